"""From stored per-image records to per-codec, per-rate numbers (CompressAI-style `results` lists),
uncompressed reference values and Bjøntegaard deltas against an anchor codec. The averaging
conventions are spelled out in `CONVENTIONS`, which every report repeats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from versacodec.evaluation.bdrate import bjontegaard
from versacodec.evaluation.cache import ResultStore
from versacodec.evaluation.codecs import ImageCodec
from versacodec.evaluation.quality import DISTRIBUTION_METRICS, LOWER_IS_BETTER, NOT_RATE_QUALITY, PER_IMAGE_METRICS
from versacodec.evaluation.runner import ORIGINAL_VERSION, UNCOMPRESSED, PreparedDataset

COUNT_KEYS = ("target_bpp", "bpp", "images", "failures", "shrunk")
CONVENTIONS = (
    "`bpp` is the mean over all images of the real file size × 8 / original pixels; an image the codec could "
    "not code within budget counts as 0 bits (nothing was sent) and as a failure.",
    "Quality metrics (PSNR, MS-SSIM, LPIPS, DISTS) average the images that were coded; failures are counted.",
    "FID/KID compare the 256×256 patches (plus the grid shifted by 128) of all originals with those of the "
    "coded images.",
    "Task metrics count a failure as wrong / no detections; reference-based tasks compare with the model's "
    "output on the original.",
    "A rate whose records are incomplete (a job failed) reports no values rather than partial ones.",
)


def metric_directions(entry: PreparedDataset) -> dict[str, bool]:
    """Every reported metric key → True when higher is better, in report order."""
    directions = {m: m not in LOWER_IS_BETTER for m in entry.metrics}
    for task in entry.tasks:
        directions.update({f"{task.name}/{name}": higher for name, higher in task.metrics.items()})
    return directions


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _load(store: ResultStore, entry: PreparedDataset, codec: str, version: str, rule: str | None,
          rate: float | None) -> dict[str, dict]:
    records = {}
    for item in entry.dataset.items:
        record = store.load(entry.dataset.key, codec, version, rate, item.id)
        if record is not None and record.get("rate_rule") == rule:
            records[item.id] = record
    return records


def _features(store: ResultStore, entry: PreparedDataset, codec: str, version: str, rate: float | None,
              image_ids: Sequence[str]) -> list[np.ndarray]:
    paths = [store.features_path(entry.dataset.key, codec, version, rate, image) for image in image_ids]
    return [np.load(path) for path in paths if path.is_file()]


def _task_scores(entry: PreparedDataset, records: dict[str, dict]) -> dict[str, float | None]:
    scores: dict[str, float | None] = {}
    for task in entry.tasks:
        task_records = {image: r["tasks"][task.name] for image, r in records.items() if task.name in r["tasks"]}
        complete = len(task_records) == len(entry.dataset.items)
        values = task.score(entry.dataset, task_records) if complete else {}
        scores.update({f"{task.name}/{name}": values.get(name) for name in task.metrics})
    return scores


def reference_summary(entry: PreparedDataset, store: ResultStore) -> dict | None:
    """Task metrics on the uncompressed originals (the ceiling each codec is measured against)."""
    if not entry.tasks:
        return None
    records = _load(store, entry, UNCOMPRESSED, ORIGINAL_VERSION, None, None)
    return {"images": len(records), "metrics": _task_scores(entry, records)}


def codec_summary(entry: PreparedDataset, codec: ImageCodec, rates: Sequence[float], store: ResultStore) -> dict:
    directions = metric_directions(entry)
    results: dict[str, list] = {key: [] for key in (*COUNT_KEYS, *directions)}
    per_image: list[dict] = []
    incomplete: list[float] = []
    distribution = [m for m in entry.metrics if m in DISTRIBUTION_METRICS]
    reference_features = []
    if distribution:
        ids = [item.id for item in entry.dataset.items]
        reference_features = _features(store, entry, UNCOMPRESSED, ORIGINAL_VERSION, None, ids)
    for rate in rates:
        records = _load(store, entry, codec.name, codec.version, codec.rate_rule, rate)
        complete = len(records) == len(entry.dataset.items)
        if not complete:
            incomplete.append(rate)
        coded = {image: r for image, r in records.items() if not r.get("failure")}
        values: dict[str, float | None] = {}
        for metric in entry.metrics:
            if metric in PER_IMAGE_METRICS:
                values[metric] = _mean([r["metrics"][metric] for r in coded.values() if metric in r["metrics"]])
        if distribution:
            from versacodec.evaluation.quality import distribution_metrics

            test_features = _features(store, entry, codec.name, codec.version, rate, list(coded))
            enough = sum(map(len, test_features)) >= 2 and sum(map(len, reference_features)) >= 2
            values.update(distribution_metrics(reference_features, test_features, distribution) if enough else {})
        values.update(_task_scores(entry, records))
        results["target_bpp"].append(rate)
        results["bpp"].append(_mean([r["bpp"] for r in records.values()]) if complete else None)
        results["images"].append(len(records))
        results["failures"].append(sum(1 for r in records.values() if r.get("failure")))
        results["shrunk"].append(sum(1 for r in coded.values() if r.get("shrink") not in (None, 1.0)))
        for key in directions:
            results[key].append(values.get(key) if complete else None)
        per_image.extend(_compact(entry, record) for record in records.values())
    return {"name": codec.name, "version": codec.version, "rate_rule": codec.rate_rule, "results": results,
            "incomplete_rates": incomplete, "per_image": per_image}


def _compact(entry: PreparedDataset, record: dict) -> dict:
    """A per-image row for the run JSON: rate facts, metrics and small task facts (no raw outputs)."""
    row = {key: record.get(key) for key in ("image", "target_bpp", "bytes", "bpp", "setting", "shrink", "failure",
                                            "decode_seconds")}
    row.update(record["metrics"])
    for task in entry.tasks:
        facts = record["tasks"].get(task.name, {})
        row.update({f"{task.name}/{key}": facts[key] for key in task.per_image_keys if key in facts})
    return row


def bd_table(codecs: dict[str, dict], anchor: str, directions: dict[str, bool]) -> dict:
    """BD-rate / BD-metric of every codec against the anchor, per metric (realised mean bpp as rate)."""
    base = codecs[anchor]["results"]
    table: dict[str, dict[str, dict]] = {}
    for metric, higher in directions.items():
        if metric in NOT_RATE_QUALITY:
            continue
        rows = {}
        for name, summary in codecs.items():
            if name == anchor:
                continue
            results = summary["results"]
            pairs_anchor = _pairs(base["bpp"], base[metric])
            pairs_test = _pairs(results["bpp"], results[metric])
            delta = bjontegaard(*pairs_anchor, *pairs_test, higher_is_better=higher)
            rows[name] = delta.as_dict()
        table[metric] = rows
    return {"anchor": anchor, "rate": "mean realised bpp", "metrics": table}


def _pairs(rates: Sequence[float | None], values: Sequence[float | None]) -> tuple[list[float], list[float]]:
    kept = [(r, v) for r, v in zip(rates, values, strict=True)
            if r is not None and v is not None and math.isfinite(v) and r > 0]
    return [r for r, _ in kept], [v for _, v in kept]


def dataset_summary(entry: PreparedDataset, codecs: Sequence[ImageCodec], rates: Sequence[float],
                    store: ResultStore, anchor: str | None) -> dict:
    directions = metric_directions(entry)
    summaries = {codec.name: codec_summary(entry, codec, rates, store) for codec in codecs}
    summary = {
        "dataset": entry.dataset.describe(),
        "metrics": {key: {"higher_is_better": higher} for key, higher in directions.items()},
        "tasks": {task.name: task.description for task in entry.tasks},
        "reference": reference_summary(entry, store),
        "codecs": summaries,
        "bd": None,
    }
    if anchor is not None and anchor in summaries:
        summary["bd"] = bd_table(summaries, anchor, directions)
    return summary
