"""Where machine-task accuracy goes (issue #27, step 1): COCO detection mAP (all, small, medium,
large objects) and ImageNet top-1 (EfficientNet-Lite0, MobileNetV2) along the decode chain, and
the fixed cost of a stream at each rate.

Rows, each scored by the evaluation's own task models and protocols (`evaluation/tasks`):
- uncompressed: the original;
- autoencoder → direct / generative pixel decoder: the float latent of the latent space,
  neither quantised nor coded, rendered by each path's pixel decoder (what the codec could reach
  with unlimited bits, the prior skipped);
- `--reference-space taef2`: another latent space's round trip (what a pretrained one keeps);
- per rate, HEIF and the two versacodec decodes, read from an evaluation run's results.json
  (`versacodec eval --dataset coco --tasks detection` and `--dataset imagenet --tasks
  classification,classification-mobilenet --limit 50`, as the report runs them).

The stream cost: each image compressed at each rate (rate control on the real file size), its
bytes split into header, section framing and each section's payload (`Stream.byte_breakdown`);
images whose smallest stream is over the budget (the evaluation shrinks them) are counted.

    .venv/bin/python benchmarks/task_ceilings.py --eval runs/ceilings-coco runs/ceilings-imagenet \\
        [--model DIR] [--bpp 0.025,0.05,0.1,0.2] [--json OUT.json] [--markdown OUT.md]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from versacodec.codec import Codec
from versacodec.container.format import Stream
from versacodec.determinism import reproducible_inference
from versacodec.errors import BudgetTooSmall
from versacodec.evaluation.datasets import Dataset, load_image, open_dataset
from versacodec.evaluation.quality import image_tensor
from versacodec.evaluation.tasks import TASKS
from versacodec.imaging import pad_to_multiple, to_pil
from versacodec.latent_space.registry import load_latent_space

# The report's sets: all of coco-val-mini, the first 50 of imagenet-eval (evaluation/presets.py).
SETS = {"coco": (None, ("detection",)), "imagenet": (50, ("classification", "classification-mobilenet"))}
RATE_CODECS = ("heif", "versacodec-direct", "versacodec-generative")


def autoencoder_round_trip(codec: Codec, image: Image.Image, decoder: str) -> Image.Image:
    """The image through the latent space alone: encode, no quantisation, the path's pixel decoder."""
    loaded = codec.model.load_image(image)
    padded = pad_to_multiple(loaded.pixels, codec.model.block)
    with reproducible_inference(), torch.no_grad():
        latent = codec.model.encode_pixels(padded)
        pixels = codec.model.decode_pixels(latent, decoder)[..., : loaded.pixels.shape[-2], : loaded.pixels.shape[-1]]
    return to_pil(pixels, loaded.colour)


def space_round_trip(space, image: Image.Image) -> Image.Image:
    """The image through another latent space (a reference: what a pretrained one keeps)."""
    pixels = image_tensor(image)
    with torch.no_grad():
        decoded = space.decode(space.encode(pad_to_multiple(pixels, space.factor))).clamp(0, 1)
    return to_pil(decoded[..., : pixels.shape[-2], : pixels.shape[-1]])


def score_chain(codec: Codec, dataset: Dataset, task_names: tuple[str, ...],
                reference_spaces: dict[str, object]) -> dict[str, dict[str, float]]:
    """Task metrics of the original, of each autoencoder round trip, and of each reference
    latent space's round trip."""
    tasks = [TASKS[name]() for name in task_names]
    variants = ("uncompressed", "autoencoder → direct", "autoencoder → generative",
                *(f"{spec} round trip (reference)" for spec in reference_spaces))
    records: dict[str, dict[str, dict[str, dict]]] = {v: {t.name: {} for t in tasks} for v in variants}
    for item in tqdm(dataset.items, desc=f"{dataset.name}: round trips", leave=False):
        original = load_image(item.path)
        images = {"uncompressed": original,
                  "autoencoder → direct": autoencoder_round_trip(codec, original, "direct"),
                  "autoencoder → generative": autoencoder_round_trip(codec, original, "generative")}
        images |= {f"{spec} round trip (reference)": space_round_trip(space, original)
                   for spec, space in reference_spaces.items()}
        for variant, image in images.items():
            for task in tasks:
                records[variant][task.name][item.id] = task.record(item, task.predict(image), None)
    return {variant: {f"{task.name}/{metric}": value for task in tasks
                      for metric, value in task.score(dataset, by_task[task.name]).items()}
            for variant, by_task in records.items()}


def rate_rows(results: Path, dataset: str, rates: list[float]) -> dict[str, dict[str, dict[str, float]]]:
    """codec → rate label → task metrics, from an evaluation run's results.json."""
    run = json.loads((results / "results.json").read_text())
    found = run["datasets"].get(dataset)
    if found is None:
        return {}
    rows: dict[str, dict[str, dict[str, float]]] = {}
    for codec in RATE_CODECS:
        entry = found["codecs"].get(codec)
        if entry is None:
            continue
        columns = entry["results"]  # metric → one value per target rate
        for rate in rates:
            if rate not in columns["target_bpp"]:
                continue
            index = columns["target_bpp"].index(rate)
            rows.setdefault(codec, {})[f"{rate:g}"] = {
                key: values[index] for key, values in columns.items() if "/" in key and values[index] is not None}
    return rows


def stream_costs(codec: Codec, dataset: Dataset, rates: list[float]) -> dict[str, dict]:
    """Per rate: mean bytes per part of the stream, and how many images do not fit unshrunk."""
    costs = {}
    for rate in rates:
        parts: dict[str, list[int]] = {}
        over_budget = 0
        for item in tqdm(dataset.items, desc=f"{dataset.name}: streams at {rate:g} bpp", leave=False):
            try:
                encoded = codec.encode(load_image(item.path), bpp=rate)
            except BudgetTooSmall:  # below the smallest stream of this image: the evaluation shrinks it
                over_budget += 1
                continue
            breakdown = Stream.from_bytes(encoded.data).byte_breakdown() | {"total": len(encoded.data)}
            for part, size in breakdown.items():
                parts.setdefault(part, []).append(size)
        costs[f"{rate:g}"] = {"images": len(dataset.items), "over_budget": over_budget,
                              "mean_bytes": {part: statistics.mean(sizes) for part, sizes in parts.items()}}
    return costs


def markdown(report: dict) -> str:
    lines = [f"# Task ceilings ({report['model']})", ""]
    for name, entry in report["sets"].items():
        metrics = list(next(iter(entry["chain"].values())))
        lines += [f"## {name} ({entry['images']} images)", "", "| row | " + " | ".join(metrics) + " |",
                  "|---|" + "---|" * len(metrics)]
        for row, values in entry["chain"].items():
            lines.append(f"| {row} | " + " | ".join(f"{values[m]:.1f}" for m in metrics) + " |")
        for codec, by_rate in entry["rates"].items():
            for rate, values in by_rate.items():
                cells = " | ".join("—" if values.get(m) is None else f"{values[m]:.1f}" for m in metrics)
                lines.append(f"| {codec} @ {rate} bpp | {cells} |")
        parts = sorted({p for cost in entry["streams"].values() for p in cost["mean_bytes"]} - {"total"})
        lines += ["", "Mean bytes per stream (images over budget unshrunk are left out and counted):", "",
                  "| bpp | over budget | total | " + " | ".join(parts) + " |", "|---|---|---|" + "---|" * len(parts)]
        for rate, cost in entry["streams"].items():
            sizes = cost["mean_bytes"]
            cells = " | ".join(f"{sizes.get(p, 0):.1f}" for p in parts)
            total = sizes.get("total", 0)
            lines.append(f"| {rate} | {cost['over_budget']} of {cost['images']} | {total:.0f} | {cells} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", nargs="*", type=Path, default=[],
                        help="evaluation output folders (results.json) with the per-rate rows")
    parser.add_argument("--model", default=None)
    parser.add_argument("--bpp", default="0.025,0.05,0.1,0.2")
    parser.add_argument("--sets", default="coco,imagenet")
    parser.add_argument("--limit", type=int, help="only the first N images of each set (a quick look)")
    parser.add_argument("--reference-space", action="append", default=[], metavar="SPEC",
                        help="also round-trip another latent space (taef2, sd-vae:DIR): what a pretrained one keeps")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--reuse", type=Path,
                        help="a JSON this script wrote for the same model: keep its round trips and stream "
                             "costs, read only the evaluation rows again")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    rates = [float(v) for v in args.bpp.split(",")]
    codec = Codec.from_pretrained(args.model)
    report: dict = {"model": f"{codec.model.model_id} (weights {codec.model.weights_hash.hex()[:12]})", "sets": {}}
    reused = json.loads(args.reuse.read_text()) if args.reuse else {"model": report["model"], "sets": {}}
    if reused["model"] != report["model"]:
        raise SystemExit(f"error: {args.reuse} is of {reused['model']}, not {report['model']}")
    references = {spec: load_latent_space(spec) for spec in args.reference_space}
    for name in args.sets.split(","):
        limit, task_names = SETS[name]
        dataset = open_dataset(name, args.limit or limit)
        entry = reused["sets"].get(name) or {
            "images": len(dataset.items), "chain": score_chain(codec, dataset, task_names, references),
            "streams": stream_costs(codec, dataset, rates)}
        entry["rates"] = {}
        for folder in args.eval:
            entry["rates"].update(rate_rows(folder, name, rates))
        report["sets"][name] = entry
    text = markdown(report)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
