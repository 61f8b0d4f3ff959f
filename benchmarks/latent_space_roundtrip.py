"""How much a latent space alone loses: encode → decode every Kodak image, no coding in between.

    .venv/bin/python benchmarks/latent_space_roundtrip.py                        # the shipped model's autoencoder
    .venv/bin/python benchmarks/latent_space_roundtrip.py --space taef2 --limit 3
    .venv/bin/python benchmarks/latent_space_roundtrip.py --space versacodec:runs/autoencoder/final --json

This is the ceiling of the direct decoder: no rate makes it better than this round trip.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
from PIL import Image

from versacodec.bundle import resolve_model_dir
from versacodec.evaluation.quality import image_tensor, per_image_metrics
from versacodec.latent_space.registry import load_latent_space
from versacodec.paths import data_dir

METRICS = ("psnr", "lpips", "dists")


@torch.no_grad()
def round_trip(space_spec: str, images: list[Path]) -> list[dict[str, float]]:
    space = load_latent_space(space_spec)
    rows = []
    for path in images:
        original = Image.open(path).convert("RGB")
        pixels = image_tensor(original)
        height, width = (side - side % space.factor for side in pixels.shape[-2:])
        cropped = pixels[..., :height, :width]
        decoded = space.decode(space.encode(cropped)).clamp(0, 1)
        as_image = Image.fromarray(decoded[0].mul(255).round().byte().permute(1, 2, 0).numpy())
        reference = original.crop((0, 0, width, height))
        rows.append({"image": path.name, **per_image_metrics(reference, as_image, METRICS)})
        print(f"{path.name}: " + ", ".join(f"{k} {rows[-1][k]:.4f}" for k in METRICS), file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", help="latent space spec (default: versacodec:<shipped model>)")
    parser.add_argument("--limit", type=int, help="first N Kodak images only")
    parser.add_argument("--json", action="store_true", help="print per-image rows and means as JSON")
    args = parser.parse_args()
    root = data_dir()
    if root is None or not (root / "kodak").is_dir():
        sys.exit("latent_space_roundtrip: no Kodak folder (set VERSACODEC_DATA)")
    images = sorted((root / "kodak").glob("*.png"))[: args.limit]
    spec = args.space or f"versacodec:{resolve_model_dir(None)}"
    rows = round_trip(spec, images)
    means = {k: statistics.fmean(r[k] for r in rows) for k in METRICS}
    if args.json:
        print(json.dumps({"space": spec, "images": len(rows), "mean": means, "rows": rows}, indent=2))
    else:
        print(f"{spec} on {len(rows)} Kodak images: " + ", ".join(f"{k} {v:.4f}" for k, v in means.items()))


if __name__ == "__main__":
    main()
