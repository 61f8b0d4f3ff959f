"""Calibrate where the generative decoder starts: the one-step timestep for each stream quality,
the multi-step strength, and the start timestep of each palette layer of a scalable stream.

Decodes held-out images of the training pool (never an evaluation set) with each candidate and
reports LPIPS + DISTS against the originals; `--write` stores the best candidates in the
bundle's generative/generative.json.

- one-step: streams at RATES; the best timestep over all of them (`one_step_timestep`), and the
  best one at each rate, keyed by the streams' median quality (`one_step_timesteps_by_quality`:
  a stream uses the pair of the rate whose median quality it reaches; boundaries midway).
- multi-step: the best `start_strength` for MULTI_STEPS-step decodes of the same streams.
- layers: one `--layers` encode per image at LAYERED_RATE; each palette level's latent is decoded
  from every candidate start (`layer_start_timesteps`, per level).

t = 0 (the decoded latent as it is, i.e. the direct decode) is measured as the reference but not
chosen for the one-step and layer starts: the generative decoder is there to make coarse
streams look natural, and without diffusion palette prefixes come out posterised (flat colour
regions with dithered edges) even where LPIPS + DISTS prefer them; `--decoder direct` is the
undiffused decode.

    .venv/bin/python benchmarks/calibrate_generative.py --model DIR [--images 8] [--parts one-step,layers] [--write]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

from PIL import Image, ImageOps

from versacodec.api import truncate
from versacodec.bundle import read_manifest
from versacodec.codec import Codec
from versacodec.determinism import reproducible_inference
from versacodec.evaluation.quality import per_image_metrics
from versacodec.generative.decoder import CONFIG_NAME
from versacodec.imaging import to_pil
from versacodec.training.data import list_images, split_train_validation, training_root

ONE_STEP_TIMESTEPS = (0, 50, 100, 200, 300, 450)
STRENGTHS = (0.2, 0.35, 0.5, 0.7)
MULTI_STEPS = 4
RATES = (0.025, 0.05, 0.1, 0.2)
METRICS = ("lpips", "dists")
LAYER_STARTS = (0, 50, 100, 150, 200, 300, 450)
PALETTE_LEVELS = 4  # levels calibrated; deeper ones use the last level's start
LAYERED_RATE = 0.1
PARTS = ("one-step", "multi-step", "layers")


@dataclasses.dataclass
class CodedImage:
    original: Image.Image
    rate: float
    data: bytes
    quality: int


def held_out_images(count: int) -> list[Image.Image]:
    _, validation = split_train_validation(list_images(training_root(None)), 16)
    # Upright, as the codec reads them (it applies EXIF orientation).
    return [ImageOps.exif_transpose(Image.open(path)).convert("RGB") for path in validation[:count]]


def perceptual_error(original: Image.Image, decoded: Image.Image) -> float:
    return sum(per_image_metrics(original, decoded.convert("RGB"), METRICS).values())


def calibrate_one_step(codec: Codec, coded: list[CodedImage]) -> tuple[dict, dict]:
    base = codec.model.generative.config
    by_rate: dict[float, dict[int, float]] = {rate: {} for rate in RATES}
    try:
        for timestep in ONE_STEP_TIMESTEPS:
            codec.model.generative.config = dataclasses.replace(base, one_step_timestep=timestep,
                                                          one_step_timesteps_by_quality=())
            for rate in RATES:
                errors = [perceptual_error(c.original, codec.decode(c.data, decoder="generative", steps=1).image)
                          for c in coded if c.rate == rate]
                by_rate[rate][timestep] = statistics.fmean(errors)
            print(f"one step from t={timestep}: " + ", ".join(f"{r} bpp {by_rate[r][timestep]:.4f}" for r in RATES))
    finally:
        codec.model.generative.config = base
    overall = {t: statistics.fmean(by_rate[r][t] for r in RATES) for t in ONE_STEP_TIMESTEPS}
    diffused = [t for t in ONE_STEP_TIMESTEPS if t > 0]
    table: list[list[int]] = []
    previous_quality = None
    for rate in RATES:
        quality = statistics.median(c.quality for c in coded if c.rate == rate)
        best = min(diffused, key=by_rate[rate].get)
        lowest = 0 if previous_quality is None else round((previous_quality + quality) / 2)
        if not table or table[-1][1] != best:
            table.append([lowest, best])
        previous_quality = quality
    results = {"one_step_timestep": overall, "one_step_by_rate": by_rate}
    return results, {"one_step_timestep": min(diffused, key=overall.get), "one_step_timesteps_by_quality": table}


def calibrate_multi_step(codec: Codec, coded: list[CodedImage]) -> tuple[dict, dict]:
    base = codec.model.generative.config
    scores = {}
    try:
        for strength in STRENGTHS:
            codec.model.generative.config = dataclasses.replace(base, start_strength=strength)
            scores[strength] = statistics.fmean(
                perceptual_error(c.original, codec.decode(c.data, decoder="generative", steps=MULTI_STEPS).image)
                for c in coded)
            print(f"{MULTI_STEPS} steps from strength {strength}: {scores[strength]:.4f}")
    finally:
        codec.model.generative.config = base
    return {"start_strength": scores}, {"start_strength": min(scores, key=scores.get)}


def palette_prefix_scores(codec: Codec, image: Image.Image) -> list[dict[int, float]]:
    """LPIPS + DISTS of each palette level's prefix decoded from each candidate start."""
    data = codec.encode(image, bpp=LAYERED_RATE, layers=PALETTE_LEVELS + 1).data
    scores = []
    for level in range(1, PALETTE_LEVELS + 1):
        prefix = codec.read(truncate(data, level))
        tags = list(prefix.tags or ())
        decoded = {}
        with reproducible_inference():
            palette = codec.decoded_latent(prefix).latent
            for start in LAYER_STARTS:
                latent = codec.model.generative.sample(palette, tags, steps=1, cfg=codec.model.defaults.cfg,
                                                        start=start)
                pixels = codec.model.decode_pixels(latent, "generative")
                decoded[start] = to_pil(pixels[..., : image.height, : image.width])
        scores.append({start: perceptual_error(image, picture) for start, picture in decoded.items()})
    return scores


def calibrate_layers(codec: Codec, images: list[Image.Image]) -> tuple[dict, dict]:
    per_image = [palette_prefix_scores(codec, image) for image in images]
    table = {}
    for level in range(1, PALETTE_LEVELS + 1):
        table[level] = {start: statistics.fmean(scores[level - 1][start] for scores in per_image)
                        for start in LAYER_STARTS}
        print(f"palette level {level}: " + ", ".join(f"t={s} {v:.4f}" for s, v in table[level].items()))
    best = [min((start for start in LAYER_STARTS if start > 0), key=scores.get) for scores in table.values()]
    return {"layer_start_timesteps": table}, {"layer_start_timesteps": best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model bundle folder with a generative decoder")
    parser.add_argument("--images", type=int, default=8, help="held-out training-pool images to use")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    parser.add_argument("--write", action="store_true", help="store the best settings in the bundle")
    args = parser.parse_args()
    parts = args.parts.split(",")
    if unknown := sorted(set(parts) - set(PARTS)):
        raise SystemExit(f"calibrate_generative: unknown part(s) {', '.join(unknown)}")
    codec = Codec.from_pretrained(args.model)
    if codec.model.generative is None:
        raise SystemExit("calibrate_generative: this bundle has no generative decoder")
    images = held_out_images(args.images)
    results: dict[str, dict] = {}
    best: dict[str, object] = {}
    if "one-step" in parts or "multi-step" in parts:
        coded = []
        for image in images:
            for rate in RATES:
                encoded = codec.encode(image, bpp=rate)
                coded.append(CodedImage(image, rate, encoded.data, encoded.quality))
        direct = statistics.fmean(perceptual_error(c.original, codec.decode(c.data, decoder="direct").image)
                                  for c in coded)
        print(f"direct decoder: LPIPS + DISTS {direct:.4f}")
        results["direct"] = {"lpips+dists": direct}
        for part, calibrate in (("one-step", calibrate_one_step), ("multi-step", calibrate_multi_step)):
            if part in parts:
                part_results, part_best = calibrate(codec, coded)
                results.update(part_results)
                best.update(part_best)
    if "layers" in parts:
        part_results, part_best = calibrate_layers(codec, images)
        results.update(part_results)
        best.update(part_best)
    print(json.dumps({"results": results, "best": best}, indent=2))
    if args.write:
        model = Path(args.model)
        config_path = read_manifest(model).path(model, "generative") / CONFIG_NAME
        stored = json.loads(config_path.read_text())
        stored.update(best)
        config_path.write_text(json.dumps(stored, indent=2) + "\n")
        print(f"wrote {best} to {config_path}")


if __name__ == "__main__":
    main()
