"""Side-by-side sheet of task streams for the model card: original | full stream | partial stream.

Each image is compressed once with `--task` at the target rate; the partial stream is that file
after `extract` (the task's regions only). Both decode with the default (generative) decoder.
Labels give each stream's real bpp. Written as JPEG at a reduced width to stay small in git.

    .venv/bin/python scripts/partial_vs_full.py 000000000139 000000022192 \\
        [--task detection] [--bpp 0.1] [--out docs/images/partial-vs-full.jpg]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from versacodec.api import extract as extract_task
from versacodec.codec import Codec
from versacodec.paths import data_dir

COLUMN_WIDTH = 320
LABEL_HEIGHT = 18


def row(codec: Codec, image: Image.Image, task: str, bpp: float) -> list[tuple[Image.Image, str]]:
    full = codec.encode(image, bpp=bpp, task=task).data
    partial = extract_task(full, task)
    pixels = image.width * image.height
    return [(image, "original"),
            (codec.decode(full).image, f"full stream, {len(full) * 8 / pixels:.3f} bpp"),
            (codec.decode(partial).image, f"{task} regions only, {len(partial) * 8 / pixels:.3f} bpp")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+", help="coco-val-mini image ids (file stems)")
    parser.add_argument("--task", default="detection")
    parser.add_argument("--bpp", type=float, default=0.1)
    parser.add_argument("--model", default=None, help="model bundle (default: the shipped one)")
    parser.add_argument("--out", default="docs/images/partial-vs-full.jpg")
    args = parser.parse_args()
    root = data_dir()
    if root is None:
        raise SystemExit("no data directory: set VERSACODEC_DATA or provide ../shared/data")
    codec = Codec.from_pretrained(args.model)
    rows = []
    for stem in args.images:
        with Image.open(root / "coco-val-mini" / "images" / f"{stem}.jpg") as source:
            rows.append(row(codec, source.convert("RGB"), args.task, args.bpp))
    heights = [round(cells[0][0].height * COLUMN_WIDTH / cells[0][0].width) for cells in rows]
    sheet = Image.new("RGB", (3 * COLUMN_WIDTH, sum(h + LABEL_HEIGHT for h in heights)), "white")
    draw = ImageDraw.Draw(sheet)
    top = 0
    for cells, height in zip(rows, heights, strict=True):
        for column, (image, label) in enumerate(cells):
            draw.text((column * COLUMN_WIDTH + 4, top + 3), label, fill="black")
            sheet.paste(image.resize((COLUMN_WIDTH, height), Image.Resampling.LANCZOS),
                        (column * COLUMN_WIDTH, top + LABEL_HEIGHT))
        top += height + LABEL_HEIGHT
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, quality=88)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
