"""The REGION_MAP section: the region sets of a task-structured stream, as boxes on y's grid.

Layout: varint set count; per set: name (1-byte length + UTF-8), varint box count, per box:
label (1-byte length + UTF-8) then x0, y0, x1, y1 as varints in y-grid cells (end exclusive).
The latent section of set i covers the union of its boxes minus what earlier sets claimed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from versacodec.container.format import get_varint, put_varint
from versacodec.errors import StreamError

MAX_BOXES = 4096


@dataclass(frozen=True)
class RegionSet:
    name: str
    boxes: tuple[tuple[str, int, int, int, int], ...]  # (label, x0, y0, x1, y1) on y's grid

    def mask(self, grid: tuple[int, int]) -> torch.Tensor:
        mask = torch.zeros(grid, dtype=torch.bool)
        for _, x0, y0, x1, y1 in self.boxes:
            mask[y0:y1, x0:x1] = True
        return mask


def _put_text(text: str) -> bytes:
    data = text.encode("utf-8")[:255]
    return bytes([len(data)]) + data


def _get_text(payload: bytes, offset: int) -> tuple[str, int]:
    if offset >= len(payload) or offset + 1 + payload[offset] > len(payload):
        raise StreamError("corrupted: region map is cut short")
    end = offset + 1 + payload[offset]
    try:
        return payload[offset + 1 : end].decode("utf-8"), end
    except UnicodeDecodeError as exc:
        raise StreamError("corrupted: region map text is not UTF-8") from exc


def pack_region_map(sets: list[RegionSet]) -> bytes:
    parts = [put_varint(len(sets))]
    for region_set in sets:
        parts += [_put_text(region_set.name), put_varint(len(region_set.boxes))]
        for label, *coordinates in region_set.boxes:
            parts += [_put_text(label), *(put_varint(v) for v in coordinates)]
    return b"".join(parts)


def unpack_region_map(payload: bytes, grid: tuple[int, int]) -> list[RegionSet]:
    rows, cols = grid
    count, offset = get_varint(payload, 0, "the region set count")
    if count > 255:
        raise StreamError(f"corrupted: {count} region sets")
    sets = []
    for _ in range(count):
        name, offset = _get_text(payload, offset)
        boxes_count, offset = get_varint(payload, offset, "the region box count")
        if boxes_count > MAX_BOXES:
            raise StreamError(f"corrupted: {boxes_count} region boxes")
        boxes = []
        for _ in range(boxes_count):
            label, offset = _get_text(payload, offset)
            coordinates = []
            for what in ("x0", "y0", "x1", "y1"):
                value, offset = get_varint(payload, offset, f"region box {what}")
                coordinates.append(value)
            x0, y0, x1, y1 = coordinates
            if not (x0 < x1 <= cols and y0 < y1 <= rows):
                raise StreamError("corrupted: a region box lies outside the latent grid")
            boxes.append((label, x0, y0, x1, y1))
        sets.append(RegionSet(name, tuple(boxes)))
    if offset != len(payload):
        raise StreamError("corrupted: unexpected bytes after the region map")
    return sets
