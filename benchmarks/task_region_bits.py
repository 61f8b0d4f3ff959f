"""Bits of full vs partial (task-only) streams for task profiles, without decoding.

For each profile, the first N coco-val-mini images are compressed with `--task PROFILE` at the
target rate and then `extract`ed; prints the mean bpp of both and the saving. A quick way to see
what a profile's margin and score threshold cost before measuring mAP with `versacodec eval`.

It also prints what the task structure itself costs: the task stream's bytes against a plain
stream at the quality rate control gives the plain stream, split into the region map and the
latent (whose region sections code without the background's context).

    .venv/bin/python benchmarks/task_region_bits.py detection my-profile.yaml [--images 24] [--bpp 0.1]
"""

from __future__ import annotations

import argparse

from PIL import Image

from versacodec.codec import Codec
from versacodec.container.format import SectionKind
from versacodec.evaluation.datasets import open_dataset
from versacodec.semantics.partial import extract_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profiles", nargs="+", help="task names or profile .yaml files")
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--bpp", type=float, default=0.1)
    parser.add_argument("--model", default=None, help="model bundle (default: the shipped one)")
    args = parser.parse_args()
    codec = Codec.from_pretrained(args.model)
    items = open_dataset("coco", args.images).items
    images = []
    for item in items:
        with Image.open(item.path) as source:
            images.append(source.convert("RGB"))
    plain = [codec.compress(image, bpp=args.bpp) for image in images]
    plain_bytes = sum(len(encoded.data) for encoded in plain)
    plain_latent = sum(_bytes_of(codec, encoded.data, SectionKind.LATENT) for encoded in plain)
    for task in args.profiles:
        full_bytes = partial_bytes = pixels = same_quality = region_map = latent = 0
        for image, reference in zip(images, plain, strict=True):
            full = codec.compress(image, bpp=args.bpp, task=task).data
            full_bytes += len(full)
            partial_bytes += len(extract_task(full, task))
            pixels += image.width * image.height
            structured = codec.compress(image, quality=reference.quality, task=task).data
            same_quality += len(structured)
            region_map += _bytes_of(codec, structured, SectionKind.REGION_MAP)
            latent += _bytes_of(codec, structured, SectionKind.LATENT)
        print(f"{task}: full {full_bytes * 8 / pixels:.4f} bpp, partial {partial_bytes * 8 / pixels:.4f} bpp, "
              f"saving {100 * (1 - partial_bytes / full_bytes):.1f} % ({len(items)} images); at the plain "
              f"stream's quality the task stream costs {_percent(same_quality - plain_bytes, plain_bytes)} more "
              f"(region map {_percent(region_map, plain_bytes)}, latent {_percent(latent - plain_latent, plain_bytes)})",
              flush=True)


def _bytes_of(codec: Codec, data: bytes, kind: SectionKind) -> int:
    """Payload bytes of one kind of section."""
    return sum(len(section.payload) for section in codec.read_stream(data).sections_of(kind))


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %"


if __name__ == "__main__":
    main()
