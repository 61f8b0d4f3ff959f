"""Generate the sample images bundled with `versacodec serve` (src/versacodec/samples/).

The pictures are drawn procedurally (seeded, so re-running gives identical files) instead of being
copied from a data set: the package may ship them under its own licence. Each one stresses a
different part of a codec: smooth gradients with fine texture, sharp-edged objects on a busy
background, and a stylised portrait.

    python scripts/make_samples.py [OUTPUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

WIDTH, HEIGHT = 320, 240
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "src" / "versacodec" / "samples"


def _fractal_noise(rng: np.random.Generator, height: int, width: int, octaves: int = 5) -> np.ndarray:
    """Sum of bilinearly upsampled random grids, 1/f-like, in [0, 1]."""
    total = np.zeros((height, width), dtype=np.float32)
    for octave in range(octaves):
        cells = 2 ** (octave + 2)
        grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
        layer = Image.fromarray(grid, "F").resize((width, height), Image.Resampling.BILINEAR)
        total += np.asarray(layer) / 2**octave
    return (total - total.min()) / (total.max() - total.min())


def landscape(rng: np.random.Generator) -> Image.Image:
    ys = np.linspace(0, 1, HEIGHT, dtype=np.float32)[:, None, None]
    sky = np.array([70, 130, 210], np.float32) * (1 - ys) + np.array([235, 200, 170], np.float32) * ys
    image = np.broadcast_to(sky, (HEIGHT, WIDTH, 3)).copy()
    xs = np.arange(WIDTH)
    for depth, (base, colour) in enumerate([(0.45, (95, 105, 140)), (0.6, (60, 90, 70)), (0.75, (40, 70, 40))]):
        ridge = _fractal_noise(rng, 1, WIDTH, octaves=6)[0]
        top = (base + 0.18 * (ridge - 0.5) / (depth + 1)) * HEIGHT
        mask = np.arange(HEIGHT)[:, None] >= top[None, xs]
        shade = 0.8 + 0.4 * _fractal_noise(rng, HEIGHT, WIDTH)[..., None]
        image = np.where(mask[..., None], np.array(colour, np.float32) * shade, image)
    picture = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(picture)
    draw.ellipse((230, 30, 270, 70), fill=(255, 236, 180))
    return picture


def objects(rng: np.random.Generator) -> Image.Image:
    wood = _fractal_noise(rng, HEIGHT, WIDTH)
    grain = 0.5 + 0.5 * np.sin(np.linspace(0, 60, WIDTH, dtype=np.float32)[None, :] + 8 * wood)
    table = np.stack([150 + 60 * grain, 100 + 40 * grain, 60 + 20 * grain], -1)
    picture = Image.fromarray(np.clip(table, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(picture)
    draw.rectangle((20, 40, 120, 140), fill=(200, 30, 40), outline=(20, 20, 20), width=3)
    draw.ellipse((150, 60, 230, 140), fill=(30, 90, 200), outline=(240, 240, 240), width=4)
    draw.polygon([(250, 200), (300, 110), (315, 210)], fill=(240, 200, 20))
    draw.rectangle((40, 170, 200, 220), fill=(245, 245, 240))
    for row in range(4):  # text-like strokes: thin high-contrast detail
        for column in range(12):
            if rng.random() < 0.8:
                x = 48 + column * 12
                draw.rectangle((x, 176 + row * 11, x + 7 + int(rng.integers(0, 3)), 181 + row * 11), fill=(30, 30, 30))
    return picture.filter(ImageFilter.SMOOTH)


def portrait(rng: np.random.Generator) -> Image.Image:
    backdrop = 90 + 60 * _fractal_noise(rng, HEIGHT, WIDTH)[..., None] * np.array([0.6, 0.8, 1.0], np.float32)
    picture = Image.fromarray(np.clip(backdrop, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(picture)
    draw.ellipse((95, 150, 225, 300), fill=(60, 70, 120))  # shoulders
    draw.rectangle((145, 130, 175, 170), fill=(214, 170, 140))  # neck
    draw.ellipse((110, 25, 210, 100), fill=(60, 40, 25))  # hair
    draw.ellipse((115, 45, 205, 160), fill=(224, 180, 150))  # face
    for eye_x in (138, 170):
        draw.ellipse((eye_x, 85, eye_x + 14, 95), fill=(250, 250, 250))
        draw.ellipse((eye_x + 4, 86, eye_x + 10, 94), fill=(50, 35, 25))
        draw.line((eye_x - 2, 78, eye_x + 15, 76), fill=(70, 45, 30), width=3)
    draw.line((160, 95, 156, 118), fill=(190, 140, 115), width=3)
    draw.arc((142, 118, 178, 140), start=20, end=160, fill=(160, 60, 60), width=4)
    return picture.filter(ImageFilter.GaussianBlur(0.8))


SAMPLES = {"landscape": landscape, "objects": objects, "portrait": portrait}


def main(output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    for index, (name, draw) in enumerate(SAMPLES.items()):
        path = output / f"{name}.png"
        draw(np.random.default_rng(index)).save(path, optimize=True)
        print(f"{path}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT)
