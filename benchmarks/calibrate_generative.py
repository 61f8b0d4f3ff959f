"""Calibrate where the generative decoder starts: the one-step timestep, the multi-step strength
and the start timestep of each palette layer of a scalable stream.

Decodes held-out images of the training pool (never an evaluation set) at a few rates with each
candidate and reports LPIPS and DISTS against the originals; `--write` stores the best candidates
(lowest mean LPIPS + DISTS) in the bundle's generative/generative.json. Palette layers are
calibrated per level on one `--layers` encode per image: each level's palette latent is decoded
from every candidate start (0: without diffusion).

    .venv/bin/python benchmarks/calibrate_generative.py --model DIR [--images 4] [--only layers] [--write]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

from PIL import Image, ImageOps

from versacodec.bundle import read_manifest
from versacodec.codec import Codec
from versacodec.determinism import reproducible_inference
from versacodec.evaluation.quality import per_image_metrics
from versacodec.generative.decoder import CONFIG_NAME
from versacodec.imaging import to_pil
from versacodec.layers.scalable import truncate_layers
from versacodec.training.data import list_images, split_train_validation, training_root

ONE_STEP_TIMESTEPS = (100, 200, 300, 450, 600)
STRENGTHS = (0.2, 0.35, 0.5, 0.7)
MULTI_STEPS = 4
RATES = (0.03, 0.1)
METRICS = ("lpips", "dists")
LAYER_STARTS = (0, 50, 100, 150, 200, 300, 450)
PALETTE_LEVELS = 4  # levels calibrated; deeper ones use the last level's start
LAYERED_RATE = 0.1


def held_out_images(count: int) -> list[Image.Image]:
    _, validation = split_train_validation(list_images(training_root(None)), 16)
    # Upright, as the codec reads them (it applies EXIF orientation).
    return [ImageOps.exif_transpose(Image.open(path)).convert("RGB") for path in validation[:count]]


def score(codec: Codec, streams: list[tuple[Image.Image, bytes]], steps: int) -> float:
    values = []
    for original, data in streams:
        decoded = codec.decompress(data, decoder="generative", steps=steps).image.convert("RGB")
        metrics = per_image_metrics(original, decoded, METRICS)
        values.append(sum(metrics.values()))
    return statistics.fmean(values)


def palette_prefix_scores(codec: Codec, image: Image.Image) -> list[dict[int, float]]:
    """LPIPS + DISTS of each palette level's prefix decoded from each candidate start."""
    data = codec.compress(image, bpp=LAYERED_RATE, layers=PALETTE_LEVELS + 1).data
    last = codec.generative.schedule.num_train_timesteps - 1
    scores = []
    for level in range(1, PALETTE_LEVELS + 1):
        stream = codec.read_stream(truncate_layers(data, level))
        tags = codec.read_tags(stream)
        row = {}
        with reproducible_inference():
            palette, _ = codec.decode_latent_and_start(stream)
            for start in LAYER_STARTS:
                latent = palette if start == 0 else codec.generative.sample(palette, tags, steps=1,
                                                                            strength=start / last)
                decoded = to_pil(codec.decode_pixels(latent)[..., : image.height, : image.width])
                row[start] = sum(per_image_metrics(image, decoded, METRICS).values())
        scores.append(row)
    return scores


def calibrate_layers(codec: Codec, images: list[Image.Image]) -> dict[int, dict[int, float]]:
    """Mean LPIPS + DISTS by palette level (1-based) and start timestep."""
    per_image = [palette_prefix_scores(codec, image) for image in images]
    table = {}
    for level in range(1, PALETTE_LEVELS + 1):
        table[level] = {start: statistics.fmean(scores[level - 1][start] for scores in per_image)
                        for start in LAYER_STARTS}
        print(f"palette level {level}: " + ", ".join(f"t={s} {v:.4f}" for s, v in table[level].items()))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model bundle folder with a generative decoder")
    parser.add_argument("--images", type=int, default=4, help="held-out training-pool images to use")
    parser.add_argument("--only", choices=("decode", "layers"), help="calibrate only plain decodes or only layers")
    parser.add_argument("--write", action="store_true", help="store the best settings in the bundle")
    args = parser.parse_args()
    codec = Codec.from_pretrained(args.model)
    if codec.generative is None:
        raise SystemExit("calibrate_generative: this bundle has no generative decoder")
    images = held_out_images(args.images)
    results: dict[str, dict] = {}
    best: dict[str, object] = {}
    if args.only != "layers":
        results, best = calibrate_decodes(codec, images)
    if args.only != "decode":
        results["layer_start_timesteps"] = calibrate_layers(codec, images)
        best["layer_start_timesteps"] = [min(table, key=table.get)
                                         for table in results["layer_start_timesteps"].values()]
    print(json.dumps({"results": results, "best": best}, indent=2))
    if args.write:
        model = Path(args.model)
        config_path = read_manifest(model).path(model, "generative") / CONFIG_NAME
        stored = json.loads(config_path.read_text())
        stored.update(best)
        config_path.write_text(json.dumps(stored, indent=2) + "\n")
        print(f"wrote {best} to {config_path}")


def calibrate_decodes(codec: Codec, images: list[Image.Image]) -> tuple[dict[str, dict], dict[str, object]]:
    """The one-step timestep and the multi-step strength, on plain streams at RATES."""
    streams = [(image, codec.compress(image, bpp=rate).data) for image in images for rate in RATES]
    direct = statistics.fmean(
        sum(per_image_metrics(image, codec.decompress(data, decoder="direct").image.convert("RGB"), METRICS).values())
        for image, data in streams)
    print(f"direct decoder: LPIPS + DISTS {direct:.4f}")
    base = codec.generative.config
    results: dict[str, dict] = {"one_step_timestep": {}, "start_strength": {}}
    try:
        for timestep in ONE_STEP_TIMESTEPS:
            codec.generative.config = dataclasses.replace(base, one_step_timestep=timestep)
            results["one_step_timestep"][timestep] = score(codec, streams, 1)
            print(f"one step from t={timestep}: {results['one_step_timestep'][timestep]:.4f}")
        for strength in STRENGTHS:
            codec.generative.config = dataclasses.replace(base, start_strength=strength)
            results["start_strength"][strength] = score(codec, streams, MULTI_STEPS)
            print(f"{MULTI_STEPS} steps from strength {strength}: {results['start_strength'][strength]:.4f}")
    finally:
        codec.generative.config = base
    results["direct"] = {"lpips+dists": direct}
    return results, {name: min(results[name], key=results[name].get) for name in ("one_step_timestep",
                                                                                   "start_strength")}


if __name__ == "__main__":
    main()
