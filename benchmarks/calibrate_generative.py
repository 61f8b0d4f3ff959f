"""Calibrate where the generative decoder starts: the one-step timestep and the multi-step strength.

Decodes held-out images of the training pool (never an evaluation set) at a few rates with each
candidate and reports LPIPS and DISTS against the originals; `--write` stores the best candidates
(lowest mean LPIPS + DISTS) in the bundle's generative/generative.json.

    .venv/bin/python benchmarks/calibrate_generative.py --model DIR [--images 4] [--write]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

from PIL import Image

from versacodec.bundle import read_manifest
from versacodec.codec import Codec
from versacodec.evaluation.quality import per_image_metrics
from versacodec.generative.decoder import CONFIG_NAME
from versacodec.training.data import list_images, split_train_validation, training_root

ONE_STEP_TIMESTEPS = (100, 200, 300, 450, 600)
STRENGTHS = (0.2, 0.35, 0.5, 0.7)
MULTI_STEPS = 4
RATES = (0.03, 0.1)
METRICS = ("lpips", "dists")


def held_out_images(count: int) -> list[Image.Image]:
    _, validation = split_train_validation(list_images(training_root(None)), 16)
    return [Image.open(path).convert("RGB") for path in validation[:count]]


def score(codec: Codec, streams: list[tuple[Image.Image, bytes]], steps: int) -> float:
    values = []
    for original, data in streams:
        decoded = codec.decompress(data, decoder="generative", steps=steps).image.convert("RGB")
        metrics = per_image_metrics(original, decoded, METRICS)
        values.append(sum(metrics.values()))
    return statistics.fmean(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model bundle folder with a generative decoder")
    parser.add_argument("--images", type=int, default=4, help="held-out training-pool images to use")
    parser.add_argument("--write", action="store_true", help="store the best settings in the bundle")
    args = parser.parse_args()
    codec = Codec.from_pretrained(args.model)
    if codec.generative is None:
        raise SystemExit("calibrate_generative: this bundle has no generative decoder")
    images = held_out_images(args.images)
    streams = [(image, codec.compress(image, bpp=rate).data) for image in images for rate in RATES]
    direct = statistics.fmean(
        sum(per_image_metrics(image, codec.decompress(data, decoder="direct").image.convert("RGB"), METRICS).values())
        for image, data in streams)
    print(f"direct decoder: LPIPS + DISTS {direct:.4f}")
    base = codec.generative.config
    results: dict[str, dict] = {"one_step_timestep": {}, "start_strength": {}}
    for timestep in ONE_STEP_TIMESTEPS:
        codec.generative.config = dataclasses.replace(base, one_step_timestep=timestep)
        results["one_step_timestep"][timestep] = score(codec, streams, 1)
        print(f"one step from t={timestep}: {results['one_step_timestep'][timestep]:.4f}")
    for strength in STRENGTHS:
        codec.generative.config = dataclasses.replace(base, start_strength=strength)
        results["start_strength"][strength] = score(codec, streams, MULTI_STEPS)
        print(f"{MULTI_STEPS} steps from strength {strength}: {results['start_strength'][strength]:.4f}")
    best = {name: min(table, key=table.get) for name, table in results.items()}
    print(json.dumps({"direct": direct, "results": results, "best": best}, indent=2))
    if args.write:
        model = Path(args.model)
        config_path = read_manifest(model).path(model, "generative") / CONFIG_NAME
        stored = json.loads(config_path.read_text())
        stored.update(best)
        config_path.write_text(json.dumps(stored, indent=2) + "\n")
        print(f"wrote {best} to {config_path}")


if __name__ == "__main__":
    main()
