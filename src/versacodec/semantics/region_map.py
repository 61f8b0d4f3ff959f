"""The region map section's codec: the region sets of a task-structured stream, as boxes on y's grid.

Layout (the payload of a REGION_MAP section): varint rows and cols of y's grid, varint set count; per set:
name (1-byte length + UTF-8), varint label count, the labels (each 1-byte length + UTF-8), varint
box count, then the boxes bit-packed MSB first and zero-padded to a byte: label index, x0, y0,
x1 - 1, y1 - 1 in y-grid cells (end exclusive), each field as wide as its largest possible value
needs (no bits for the label index of a one-label set). A box costs 3 bytes on a 640-px image
where spelling its label cost 7 more.

Streams written before the label table (section kind REGION_MAP_V1) spell each box's label and
give its corners as varints; they are still read (`unpack_region_map_v1`).

The latent section of set i covers the union of its boxes minus what earlier sets claimed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from versacodec.container.format import get_varint, put_varint
from versacodec.errors import InputError, StreamError

MAX_BOXES = 4096
MAX_SETS = 255


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
    data = text.encode("utf-8")
    if len(data) > 255:  # cutting it would rename the set or label (or split a character)
        raise InputError(f"region set and label names hold at most 255 bytes of UTF-8; {text[:24]!r}… has {len(data)}")
    return bytes([len(data)]) + data


def _get_text(payload: bytes, offset: int) -> tuple[str, int]:
    if offset >= len(payload) or offset + 1 + payload[offset] > len(payload):
        raise StreamError("corrupted: region map is cut short")
    end = offset + 1 + payload[offset]
    try:
        return payload[offset + 1 : end].decode("utf-8"), end
    except UnicodeDecodeError as exc:
        raise StreamError("corrupted: region map text is not UTF-8") from exc


def _get_count(payload: bytes, offset: int, what: str, limit: int) -> tuple[int, int]:
    count, offset = get_varint(payload, offset, f"the region {what} count")
    if count > limit:
        raise StreamError(f"corrupted: {count} region {what}s")
    return count, offset


def _check_box(box: tuple[str, int, int, int, int], grid: tuple[int, int]) -> None:
    _, x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= grid[1] and 0 <= y0 < y1 <= grid[0]):
        raise StreamError("corrupted: a region box lies outside the latent grid")


def _field_widths(labels: int, grid: tuple[int, int]) -> tuple[int, ...]:
    rows, cols = grid
    x_bits, y_bits = (cols - 1).bit_length(), (rows - 1).bit_length()
    return (labels - 1).bit_length(), x_bits, y_bits, x_bits, y_bits


def _pack_boxes(region_set: RegionSet, labels: list[str], grid: tuple[int, int]) -> bytes:
    widths = _field_widths(len(labels), grid)
    bits, length = 0, 0
    for label, x0, y0, x1, y1 in region_set.boxes:
        for value, width in zip((labels.index(label), x0, y0, x1 - 1, y1 - 1), widths, strict=True):
            bits, length = (bits << width) | value, length + width
    padding = -length % 8
    return (bits << padding).to_bytes((length + padding) // 8, "big")


def _unpack_boxes(payload: bytes, offset: int, count: int, labels: list[str],
                  grid: tuple[int, int]) -> tuple[tuple[tuple[str, int, int, int, int], ...], int]:
    widths = _field_widths(len(labels), grid)
    size = (count * sum(widths) + 7) // 8
    if offset + size > len(payload):
        raise StreamError("corrupted: region map is cut short")
    bits, remaining = int.from_bytes(payload[offset : offset + size], "big"), size * 8
    boxes = []
    for _ in range(count):
        values = []
        for width in widths:
            remaining -= width
            values.append((bits >> remaining) & ((1 << width) - 1))
        label, x0, y0, x1, y1 = values
        if label >= len(labels):
            raise StreamError("corrupted: a region box names a label the set does not have")
        box = (labels[label], x0, y0, x1 + 1, y1 + 1)
        _check_box(box, grid)
        boxes.append(box)
    return tuple(boxes), offset + size


def pack_region_map(sets: list[RegionSet], grid: tuple[int, int]) -> bytes:
    """The payload of a REGION_MAP section for `sets` on a (rows, cols) latent grid."""
    parts = [put_varint(grid[0]), put_varint(grid[1]), put_varint(len(sets))]
    for region_set in sets:
        for box in region_set.boxes:
            _check_box(box, grid)
        labels = list(dict.fromkeys(label for label, *_ in region_set.boxes))
        parts += [_put_text(region_set.name), put_varint(len(labels)), *map(_put_text, labels),
                  put_varint(len(region_set.boxes)), _pack_boxes(region_set, labels, grid)]
    return b"".join(parts)


def _unpack(payload: bytes) -> tuple[tuple[int, int], list[RegionSet]]:
    rows, offset = get_varint(payload, 0, "the region grid rows")
    cols, offset = get_varint(payload, offset, "the region grid columns")
    if not rows or not cols:
        raise StreamError("corrupted: the region map's grid is empty")
    count, offset = _get_count(payload, offset, "set", MAX_SETS)
    sets = []
    for _ in range(count):
        name, offset = _get_text(payload, offset)
        label_count, offset = _get_count(payload, offset, "label", MAX_BOXES)
        labels = []
        for _ in range(label_count):
            label, offset = _get_text(payload, offset)
            labels.append(label)
        box_count, offset = _get_count(payload, offset, "box", MAX_BOXES)
        if box_count and not labels:
            raise StreamError("corrupted: region boxes without labels")
        boxes, offset = _unpack_boxes(payload, offset, box_count, labels, (rows, cols))
        sets.append(RegionSet(name, boxes))
    if offset != len(payload):
        raise StreamError("corrupted: unexpected bytes after the region map")
    return (rows, cols), sets


def _unpack_v1(payload: bytes) -> list[RegionSet]:
    count, offset = _get_count(payload, 0, "set", MAX_SETS)
    sets = []
    for _ in range(count):
        name, offset = _get_text(payload, offset)
        box_count, offset = _get_count(payload, offset, "box", MAX_BOXES)
        boxes = []
        for _ in range(box_count):
            label, offset = _get_text(payload, offset)
            coordinates = []
            for what in ("x0", "y0", "x1", "y1"):
                value, offset = get_varint(payload, offset, f"region box {what}")
                coordinates.append(value)
            boxes.append((label, *coordinates))
        sets.append(RegionSet(name, tuple(boxes)))
    if offset != len(payload):
        raise StreamError("corrupted: unexpected bytes after the region map")
    return sets


def unpack_region_map(payload: bytes, grid: tuple[int, int] | None = None) -> list[RegionSet]:
    """The region sets of a REGION_MAP payload; with `grid` (rows, cols), the grid it stores must
    be that one (the decoder's; names and labels alone need none). Its boxes are checked against
    the grid it stores."""
    stored, sets = _unpack(payload)
    if grid is not None and stored != tuple(grid):
        raise StreamError(f"corrupted: the region map is for a {stored[1]}x{stored[0]} latent grid, "
                          f"the image's is {grid[1]}x{grid[0]}")
    return sets


def unpack_region_map_v1(payload: bytes, grid: tuple[int, int] | None = None) -> list[RegionSet]:
    """The region sets of a REGION_MAP_V1 payload; with `grid`, every box is checked to lie on it."""
    sets = _unpack_v1(payload)
    if grid is not None:
        for region_set in sets:
            for box in region_set.boxes:
                _check_box(box, grid)
    return sets
