"""`versacodec eval`: the command-line face of the evaluation harness.

Import-light on purpose: `build_parser()` of the main CLI imports this module on every
invocation, so everything heavy is imported inside the handler.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

DEFAULT_CODECS = "jpeg,webp,avif,avif-svt,heif,jp2,jxl,versacodec-direct"
DEFAULT_RATES = "0.025,0.05,0.1,0.2"
DEFAULT_METRICS = "psnr,ms-ssim,lpips,dists,periodic,colour-shift"
DEFAULT_OUT = "runs/eval"

DESCRIPTION = """\
Compress a dataset with versacodec and classical codecs at matched rates and measure what survives:
human metrics (PSNR, MS-SSIM, LPIPS, DISTS, FID/KID on 256px patches, periodic artifacts, colour
casts) and machine tasks (COCO detection / segmentation, ImageNet top-1, faces). Rates are real
file sizes over the original pixels; every codec gets the largest file within each target (below a
baseline's floor the image is shrunk, coded and upscaled, and the factor recorded). Writes
OUT/results.json (per image and per codec/rate, with every library version), OUT/results.md and
OUT/plots/*.png, with BD-rates against --anchor.

Resumable: per-image results and encodes are cached (--cache-dir), so rerunning an interrupted
command continues it, and adding a metric computes only that metric. Datasets, codecs and task
models that are not installed are skipped with a note.

datasets: kodak, clic, coco (coco-val-mini), imagenet (imagenet-eval, the 200-image subset),
  celeba (celeba-hq), or a folder (COCO if it holds instances*.json, ImageNet-style if it holds
  labels.csv, else plain images). Named sets live in $VERSACODEC_DATA (default ../shared/data).
codecs: jpeg, webp, avif (aom), avif-svt, heif (HEVC), jp2, jxl, versacodec-direct,
  versacodec-generative; versacodec options follow a colon, e.g. versacodec-generative:steps=4.
metrics: psnr, ms-ssim, lpips (alex), lpips-vgg, dists, fid, kid, periodic (the decoded image's spectral
  peaks at an 8-px grid's frequencies over its original's: 1 = no checkerboard; no BD-rate),
  colour-shift (rms chroma difference of 16-px means in 8-bit levels: a cast that LPIPS misses).
tasks: detection, instance-segmentation, semantic-segmentation (segmentation = both),
  classification (EfficientNet-Lite0), classification-mobilenet, faces. Task models come from
  $VERSACODEC_MODELS (default ../shared/models).

examples:
  versacodec eval --dataset kodak --codecs jpeg,webp,heif --bpp 0.05,0.1 --metrics psnr,lpips --out runs/k
  versacodec eval --dataset coco --codecs heif,versacodec-direct --tasks detection,segmentation --metrics psnr
  versacodec eval --dataset imagenet --tasks classification --limit 50 --workers 2
  versacodec eval --dataset ~/photos --codecs webp,versacodec-direct --bpp 0.1 --json
  versacodec eval --preset report          # regenerate docs/results/ (hours on a CPU)
"""


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _rates(text: str) -> list[float]:
    from versacodec.errors import InputError

    try:
        return [float(part) for part in _csv(text)]
    except ValueError as exc:
        raise InputError(f"--bpp takes comma-separated numbers, not {text!r}") from exc


def add_eval_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("eval", help="evaluate codecs on datasets: metrics, tasks, BD-rate, plots",
                                   description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=("report",),
                        help="report: the full committed report (Kodak + COCO + ImageNet, all codecs, "
                        "0.025-0.2 bpp) into docs/results/; other options override its codecs, rates, out, "
                        "limit and workers")
    parser.add_argument("--dataset", help="comma-separated names or folders (default: kodak)")
    parser.add_argument("--codecs", help=f"comma-separated codec specs (default: {DEFAULT_CODECS})")
    parser.add_argument("--bpp", help=f"comma-separated target bits per pixel (default: {DEFAULT_RATES})")
    parser.add_argument("--metrics", help=f"comma-separated human metrics (default: {DEFAULT_METRICS}; "
                        "'none' for tasks only)")
    parser.add_argument("--tasks", help="comma-separated machine tasks (default: none)")
    parser.add_argument("--anchor", help="codec the BD-rates are measured against (default: heif when evaluated)")
    parser.add_argument("--out", help=f"output folder for results.json/.md and plots (default: {DEFAULT_OUT})")
    parser.add_argument("--limit", type=int, help="only the first N images of each dataset")
    parser.add_argument("--workers", type=int, help="parallel worker processes (default: 1)")
    parser.add_argument("--always-shrink", action="store_true",
                        help="baselines: let shrunk versions compete with full size at every rate (best PSNR "
                        "wins), not only below the codec's floor")
    parser.add_argument("--model", metavar="DIR", help="versacodec model bundle (default: the shipped model)")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="encodes and per-image results (default: $VERSACODEC_CACHE/eval or cache/eval)")
    parser.add_argument("--fresh", action="store_true", help="recompute per-image results instead of resuming")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the per-codec summary as JSON on stdout")
    parser.set_defaults(handler=run_eval)
    return parser


def _config(args: argparse.Namespace):
    from versacodec.errors import InputError
    from versacodec.evaluation.presets import PRESETS
    from versacodec.evaluation.runner import DatasetPlan, RunConfig

    preset = PRESETS[args.preset] if args.preset else None
    if preset is not None:
        clashing = [flag for flag in ("dataset", "metrics", "tasks") if getattr(args, flag) is not None]
        if clashing:
            raise InputError(f"--preset {args.preset} fixes the datasets, metrics and tasks; drop --{clashing[0]}")
        plans = list(preset.plans)
    else:
        metrics = [] if args.metrics == "none" else _csv(args.metrics or DEFAULT_METRICS)
        tasks = _csv(args.tasks or "")
        plans = [DatasetPlan(name, tuple(metrics), tuple(tasks)) for name in _csv(args.dataset or "kodak")]
    codecs = _csv(args.codecs) if args.codecs else list(preset.codecs if preset else _csv(DEFAULT_CODECS))
    rates = _rates(args.bpp) if args.bpp else list(preset.rates if preset else _rates(DEFAULT_RATES))
    anchor = args.anchor or (preset.anchor if preset else "heif" if "heif" in codecs else None)
    out = Path(args.out or (preset.out if preset else DEFAULT_OUT))
    cache = Path(args.cache_dir) if args.cache_dir else Path(os.environ.get("VERSACODEC_CACHE", "cache")) / "eval"
    config = RunConfig(plans=plans, codecs=codecs, rates=rates, out=out, cache_dir=cache, limit=args.limit,
                       workers=args.workers or 1, always_shrink=args.always_shrink, model=args.model,
                       anchor=anchor, fresh=args.fresh, progress=not args.no_progress)
    config.command = _command(args, config)
    return config


def _command(args: argparse.Namespace, config) -> str:
    """The fully resolved command, so a report says exactly how to reproduce it."""
    words = ["versacodec", "eval"]
    if args.preset:
        words += ["--preset", args.preset]
    else:
        words += ["--dataset", ",".join(p.dataset for p in config.plans)]
        plan = config.plans[0]
        words += ["--metrics", ",".join(plan.metrics) or "none"]
        if plan.tasks:
            words += ["--tasks", ",".join(plan.tasks)]
    words += ["--codecs", ",".join(config.codecs), "--bpp", ",".join(f"{r:g}" for r in config.rates)]
    if config.anchor:
        words += ["--anchor", config.anchor]
    words += ["--out", str(config.out)]
    for flag, value in (("--limit", config.limit), ("--model", config.model)):
        if value is not None:
            words += [flag, str(value)]
    if config.always_shrink:
        words.append("--always-shrink")
    return shlex.join(words)


def run_eval(args: argparse.Namespace) -> int:
    from versacodec.fileio import writable_folder

    if args.out:  # an explicit folder is refused before torch loads (the presets import it)
        writable_folder(Path(args.out))
    config = _config(args)
    writable_folder(config.out)  # before hours of coding, not when the report is written
    from versacodec.evaluation.api import evaluate
    from versacodec.evaluation.report import json_safe

    result = evaluate(config)
    for message in result.messages:
        print(f"note: {message}", file=sys.stderr)
    for error in result.errors:
        print(f"error: {error}", file=sys.stderr)
    if args.json:
        summary = {name: {codec: data["results"] for codec, data in dataset["codecs"].items()}
                   | {"reference": (dataset["reference"] or {}).get("metrics")}
                   for name, dataset in result.run["datasets"].items()}
        print(json.dumps(json_safe(summary)))
    else:
        print(f"wrote {', '.join(str(p) for p in result.paths[:2])} and {len(result.paths) - 2} plots")
    return 1 if result.errors else 0
