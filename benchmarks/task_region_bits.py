"""Bits of full vs partial (task-only) streams for task profiles, without decoding.

For each profile, the first N coco-val-mini images are compressed with `--task PROFILE` at the
target rate and then `extract`ed; prints the mean bpp of both and the saving. A quick way to see
what a profile's margin and score threshold cost before measuring mAP with `versacodec eval`.

It also prints what the task structure itself costs: the task stream's bytes against a plain
stream at the quality rate control gives the plain stream, split into the region map and the
latent (whose region sections code without the background's context), and what the regions
cover: their share of the pixels and of the ground-truth objects (at least half of an object's
box inside), since objects outside them are not in the partial stream.

    .venv/bin/python benchmarks/task_region_bits.py detection my-profile.yaml [--images 24] [--bpp 0.1]
"""

from __future__ import annotations

import argparse
import json

import torch

from versacodec.api import extract as extract_task
from versacodec.codec import Codec
from versacodec.container.format import SectionKind, Stream
from versacodec.evaluation.datasets import load_image, open_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profiles", nargs="+", help="task names or profile .yaml files")
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--bpp", type=float, default=0.1)
    parser.add_argument("--model", default=None, help="model bundle (default: the shipped one)")
    args = parser.parse_args()
    codec = Codec.from_pretrained(args.model)
    dataset = open_dataset("coco", args.images)
    items = dataset.items
    objects = _ground_truth_boxes(dataset.annotations)
    images = [load_image(item.path) for item in items]  # as `versacodec eval` reads them
    plain = [codec.encode(image, bpp=args.bpp) for image in images]
    plain_bytes = sum(len(encoded.data) for encoded in plain)
    plain_latent = sum(_bytes_of(codec, encoded.data, SectionKind.LATENT) for encoded in plain)
    for task in args.profiles:
        full_bytes = partial_bytes = pixels = same_quality = region_map = latent = 0
        region_pixels = covered = total = 0
        for item, image, reference in zip(items, images, plain, strict=True):
            encoded = codec.encode(image, bpp=args.bpp, task=task)
            full = encoded.data
            full_bytes += len(full)
            partial_bytes += len(extract_task(full, task))
            inside = _region_pixels(codec, encoded)
            region_pixels += int(inside.sum())
            for x0, y0, x1, y1 in objects.get(item.coco_id, []):
                total += 1
                covered += bool(inside[y0:y1, x0:x1].float().mean() >= 0.5)
            pixels += image.width * image.height
            structured = codec.encode(image, quality=reference.quality, task=task).data
            same_quality += len(structured)
            region_map += _bytes_of(codec, structured, SectionKind.REGION_MAP)
            latent += _bytes_of(codec, structured, SectionKind.LATENT)
        print(f"{task}: full {full_bytes * 8 / pixels:.4f} bpp, partial {partial_bytes * 8 / pixels:.4f} bpp, "
              f"saving {100 * (1 - partial_bytes / full_bytes):.1f} % ({len(items)} images); at the plain "
              f"stream's quality the task stream costs {_percent(same_quality - plain_bytes, plain_bytes)} more "
              f"(region map {_percent(region_map, plain_bytes)}, "
              f"latent {_percent(latent - plain_latent, plain_bytes)}); "
              f"regions cover {_percent(region_pixels, pixels)} of the pixels and {covered} of {total} "
              f"ground-truth objects ({_percent(covered, total)})", flush=True)


def _ground_truth_boxes(annotations) -> dict[int, list[tuple[int, int, int, int]]]:
    """COCO image id → its non-crowd object boxes as pixel (x0, y0, x1, y1), at least 1 px wide."""
    boxes: dict[int, list[tuple[int, int, int, int]]] = {}
    for annotation in json.loads(annotations.read_text())["annotations"]:
        if not annotation.get("iscrowd"):
            x, y, width, height = annotation["bbox"]
            box = (int(x), int(y), max(int(x) + 1, int(x + width)), max(int(y) + 1, int(y + height)))
            boxes.setdefault(annotation["image_id"], []).append(box)
    return boxes


def _region_pixels(codec: Codec, encoded) -> torch.Tensor:
    """(height, width) bool: the image pixels whose latent the stream's task regions carry."""
    cell = codec.model.region_cell
    grid = (encoded.padded_height // cell, encoded.padded_width // cell)
    mask = torch.zeros(grid, dtype=torch.bool)
    for region_set in encoded.regions:
        mask |= region_set.mask(grid)
    pixels = mask.repeat_interleave(cell, 0).repeat_interleave(cell, 1)
    return pixels[: encoded.height, : encoded.width]


def _bytes_of(codec: Codec, data: bytes, kind: SectionKind) -> int:
    """Payload bytes of one kind of section."""
    return sum(len(section.payload) for section in Stream.from_bytes(data).sections_of(kind))


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %"


if __name__ == "__main__":
    main()
