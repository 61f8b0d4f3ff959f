"""Pack the training pool small enough to travel to a lent accelerator machine (64 MiB per call).

Each photo is shrunk so its short side is at most --short-side (Lanczos) and stored as WebP; the
folder layout is kept. Shrinking also softens the source JPEG artefacts the crops would carry.
The recipe in configs/accelerator/ reads the result from .gpu/train.

    .venv/bin/python scripts/pack_training_set.py [--out .gpu/train] [--short-side 272] [--quality 85]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from versacodec.training.data import list_images, training_root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=None, help="training pool (default: <data dir>/train)")
    parser.add_argument("--out", default=".gpu/train")
    parser.add_argument("--short-side", type=int, default=272)
    parser.add_argument("--quality", type=int, default=85)
    args = parser.parse_args()
    source = training_root(args.source)
    out = Path(args.out)
    total = 0
    for file in list_images(source):
        target = (out / file.relative_to(source)).with_suffix(".webp")
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(file) as image:
            image = image.convert("RGB")
            scale = min(1.0, args.short_side / min(image.size))
            if scale < 1.0:
                image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
            image.save(target, "WEBP", quality=args.quality, method=6)
        total += target.stat().st_size
    print(f"{out}: {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
