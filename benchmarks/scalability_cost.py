"""The scalability cost of layered streams: every prefix of one `--layers K` encode against
separate single-layer encodes, as Bjøntegaard deltas (issue: ≤ 15 % BD-rate penalty).

Runs the evaluation harness twice on the same images (results are cached in cache/eval, so a
rerun is fast): the single-layer codec at SINGLE_RATES, and one layered encode per image at
`--bpp` truncated to each of its K prefixes (`keep_layers=k`), for each decoder. Prints, per
decoder, the bpp and metrics of every prefix with the extra bits it costs against a single-layer
stream of equal quality (where the single-layer curve reaches it), the single-layer curve, and
the BD-rate of the prefix curve against it (negative: the layered stream needs fewer bits for
the same quality). The deltas are computed over the bpp range both curves cover.

    .venv/bin/python benchmarks/scalability_cost.py [--images 24] [--layers 4] [--bpp 0.1] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

from versacodec.evaluation.api import DatasetPlan, RunConfig, evaluate
from versacodec.evaluation.bdrate import bjontegaard

SINGLE_RATES = (0.025, 0.05, 0.1, 0.2)
DECODERS = ("versacodec-direct", "versacodec-generative")
METRICS = ("lpips", "dists")


def curve(results: dict, metric: str) -> tuple[list[float], list[float]]:
    return list(results["bpp"]), list(results[metric])


def equal_quality_rate(rates: list[float], values: list[float], target: float) -> float | None:
    """The single-layer bpp with quality `target` (lower is better), interpolated linearly in
    log-rate between the measured points; None outside the measured range."""
    points = sorted(zip(values, rates, strict=True))  # rising value = falling rate
    for (v0, r0), (v1, r1) in itertools.pairwise(points):
        if v0 <= target <= v1 and v1 > v0:
            weight = (target - v0) / (v1 - v0)
            return math.exp(math.log(r0) + weight * (math.log(r1) - math.log(r0)))
    return None


def describe(delta: dict) -> str:
    if delta["bd_rate"] is None:
        return "n/a (the curves do not overlap)"
    return f"{delta['bd_rate']:+.1%}" + ("" if delta["monotonic"] else " (non-monotonic)")


def run(args: argparse.Namespace, codecs: list[str], rates: list[float], out: str) -> dict:
    config = RunConfig(plans=[DatasetPlan(args.dataset, METRICS, ())], codecs=codecs, rates=rates,
                       out=Path(args.out) / out, cache_dir=Path(args.cache), limit=args.images,
                       workers=args.workers, model=args.model, progress=not args.json)
    evaluation = evaluate(config)
    if evaluation.errors:
        raise SystemExit("scalability_cost: evaluation jobs failed:\n" + "\n".join(evaluation.errors))
    return evaluation.run["datasets"][args.dataset]["codecs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="kodak")
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--layers", type=int, default=4, help="K of the layered encode")
    parser.add_argument("--bpp", type=float, default=0.1, help="target of the whole layered stream")
    parser.add_argument("--model", default=None, help="model bundle (default: the shipped one)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", default="cache/eval")
    parser.add_argument("--out", default="runs/scalability")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    single = run(args, list(DECODERS), list(SINGLE_RATES), "single")
    prefixes = {decoder: [f"{decoder}:layers={args.layers}:keep_layers={k}" for k in range(1, args.layers + 1)]
                for decoder in DECODERS}
    layered = run(args, [name for names in prefixes.values() for name in names], [args.bpp], "layered")
    report: dict = {"images": args.images, "layers": args.layers, "bpp": args.bpp, "decoders": {}}
    for decoder in DECODERS:
        points = [layered[name]["results"] for name in prefixes[decoder]]
        rows = [{"layers_kept": k, "bpp": p["bpp"][0], **{m: p[m][0] for m in METRICS}}
                for k, p in enumerate(points, start=1)]
        reference = single[decoder]["results"]
        for row in rows:  # the rate a single-layer stream needs for the same quality, where measured
            for metric in METRICS:
                rate = equal_quality_rate(*curve(reference, metric), row[metric])
                row[f"{metric}_rate_penalty"] = None if rate is None else row["bpp"] / rate - 1
        deltas = {}
        for metric in METRICS:
            rates, values = curve(reference, metric)
            delta = bjontegaard(rates, values, [r["bpp"] for r in rows], [r[metric] for r in rows],
                                higher_is_better=False)
            deltas[metric] = {"bd_rate": delta.bd_rate, "monotonic": delta.monotonic}
        report["decoders"][decoder] = {
            "prefixes": rows,
            "single_layer": [{"bpp": b, **{m: reference[m][i] for m in METRICS}}
                             for i, b in enumerate(reference["bpp"])],
            "bd": deltas,
        }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for decoder, entry in report["decoders"].items():
        print(f"\n{decoder}: one --layers {args.layers} encode at {args.bpp} bpp, {args.images} {args.dataset} images")
        print("  prefix  bpp      " + "  ".join(f"{m:>6}" for m in METRICS)
              + "   bits vs a single-layer stream of equal " + "/".join(METRICS))
        for row in entry["prefixes"]:
            penalties = "/".join("outside" if row[f"{m}_rate_penalty"] is None else f"{row[f'{m}_rate_penalty']:+.0%}"
                                 for m in METRICS)
            print(f"  {row['layers_kept']:>6}  {row['bpp']:.4f}   " + "  ".join(f"{row[m]:.4f}" for m in METRICS)
                  + f"   {penalties}")
        print("  single-layer: " + ", ".join(
            f"{p['bpp']:.4f} bpp " + "/".join(f"{p[m]:.3f}" for m in METRICS) for p in entry["single_layer"]))
        print("  BD-rate vs single-layer: " + ", ".join(f"{m} {describe(d)}" for m, d in entry["bd"].items()))


if __name__ == "__main__":
    main()
