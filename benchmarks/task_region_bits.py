"""Bits of full vs partial (task-only) streams for task profiles, without decoding.

For each profile, the first N coco-val-mini images are compressed with `--task PROFILE` at the
target rate and then `extract`ed; prints the mean bpp of both and the saving. A quick way to see
what a profile's margin and score threshold cost before measuring mAP with `versacodec eval`.

    .venv/bin/python benchmarks/task_region_bits.py detection my-profile.yaml [--images 24] [--bpp 0.1]
"""

from __future__ import annotations

import argparse

from PIL import Image

from versacodec.codec import Codec
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
    for task in args.profiles:
        full_bytes = partial_bytes = pixels = 0
        for item in items:
            with Image.open(item.path) as source:
                image = source.convert("RGB")
            full = codec.compress(image, bpp=args.bpp, task=task).data
            full_bytes += len(full)
            partial_bytes += len(extract_task(full, task))
            pixels += image.width * image.height
        print(f"{task}: full {full_bytes * 8 / pixels:.4f} bpp, partial {partial_bytes * 8 / pixels:.4f} bpp, "
              f"saving {100 * (1 - partial_bytes / full_bytes):.1f} % ({len(items)} images)", flush=True)


if __name__ == "__main__":
    main()
