"""Side-by-side crops a person can judge: original | HEIF | versacodec direct | versacodec generative.

For each Kodak image, versacodec writes a real file at the target bpp; HEIF (the report's anchor)
gets the largest file within the same number of bytes (the evaluation's HEIF codec and rate rule).
A crop of each decode, shown at 2× with nearest-neighbour scaling so that a grid pattern is visible
as it is, goes into OUT/kodak-BPPbpp-NAME.png with the bytes and bpp in the labels.

    .venv/bin/python scripts/kodak_comparison_crops.py [--bpp 0.05] [--out docs/images] [--model DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from versacodec.codec import Codec
from versacodec.evaluation.catalog import make_codec
from versacodec.paths import data_dir

# Image → crop box (left, top): regions where the checkerboard of v3 was plainest (issue #26).
CROPS = {"kodim04": (250, 180), "kodim14": (380, 260), "kodim23": (300, 100)}
CROP = 192
ZOOM = 2
LABEL_HEIGHT = 18


def panel(image: Image.Image, box: tuple[int, int], label: str) -> Image.Image:
    left, top = box
    crop = image.convert("RGB").crop((left, top, left + CROP, top + CROP)).resize((CROP * ZOOM,) * 2, Image.NEAREST)
    framed = Image.new("RGB", (CROP * ZOOM, CROP * ZOOM + LABEL_HEIGHT), "white")
    framed.paste(crop, (0, LABEL_HEIGHT))
    ImageDraw.Draw(framed).text((4, 3), label, fill="black")
    return framed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bpp", type=float, default=0.05)
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--model", default=None, help="model bundle (default: the shipped one)")
    args = parser.parse_args()
    root = data_dir()
    if root is None or not (root / "kodak").is_dir():
        raise SystemExit("error: Kodak not found; set VERSACODEC_DATA to the folder holding kodak/")
    codec = Codec.from_pretrained(args.model)
    heif = make_codec("heif")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, box in CROPS.items():
        original = Image.open(root / "kodak" / f"{name}.png").convert("RGB")
        encoded = codec.encode(original, bpp=args.bpp)
        pixels = original.width * original.height
        anchor = heif.encode(original, len(encoded.data) * 8 / pixels)
        panels = [panel(original, box, f"{name} original"),
                  panel(heif.decode(anchor), box, f"HEIF {len(anchor.data)} B, {anchor.bpp:.4f} bpp"),
                  *(panel(codec.decode(encoded.data, decoder=decoder).image, box,
                          f"versacodec {decoder} {len(encoded.data)} B, {encoded.bits_per_pixel:.4f} bpp")
                    for decoder in ("direct", "generative"))]
        sheet = Image.new("RGB", (sum(p.width for p in panels), panels[0].height), "white")
        for index, image in enumerate(panels):
            sheet.paste(image, (index * image.width, 0))
        target = args.out / f"kodak-{args.bpp:g}bpp-{name}.png"
        sheet.save(target)
        print(f"{target}: versacodec {len(encoded.data)} B, HEIF {len(anchor.data)} B (shrink {anchor.shrink:g})")


if __name__ == "__main__":
    main()
