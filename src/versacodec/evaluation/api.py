"""Python entry point of the evaluation harness (the `versacodec eval` command calls this).

    from versacodec.evaluation.api import DatasetPlan, RunConfig, evaluate

    result = evaluate(RunConfig(plans=[DatasetPlan("kodak", ("psnr", "lpips"), ())],
                                codecs=["webp", "heif"], rates=[0.05, 0.1], out=Path("runs/eval"),
                                cache_dir=Path("cache/eval"), anchor="heif"))
    result.run["datasets"]["kodak"]["codecs"]["webp"]["results"]["lpips"]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from versacodec.evaluation.aggregate import dataset_summary
from versacodec.evaluation.cache import ResultStore
from versacodec.evaluation.report import build_run, write_reports
from versacodec.evaluation.runner import DatasetPlan, RunConfig, execute, plan_jobs, prepare, results_root

__all__ = ["DatasetPlan", "Evaluation", "RunConfig", "evaluate"]


@dataclass
class Evaluation:
    run: dict  # everything results.json holds
    paths: list[Path]  # results.json, results.md, plots
    messages: list[str]  # what was skipped and why
    errors: list[str]  # jobs that failed unexpectedly (their rates report no values)


def evaluate(config: RunConfig) -> Evaluation:
    prepared = prepare(config)
    messages = list(prepared.messages)
    names = [codec.name for codec in prepared.codecs]
    anchor = config.anchor
    if anchor is not None and anchor not in names:
        messages.append(f"no BD-rates: the anchor codec {anchor} is not among the evaluated codecs")
        anchor = None
    errors = execute(plan_jobs(config, prepared), config)
    store = ResultStore(results_root(config.cache_dir))
    datasets = {}
    for entry in prepared.datasets:
        name = entry.dataset.name if entry.dataset.name not in datasets else entry.dataset.key
        datasets[name] = dataset_summary(entry, prepared.codecs, config.rates, store, anchor)
    settings = {
        "rates": list(config.rates),
        "codecs": names,
        "anchor": anchor,
        "limit": config.limit,
        "workers": config.workers,
        "rate_rules": {codec.name: codec.rate_rule for codec in prepared.codecs},
        "plans": [{"dataset": p.dataset, "metrics": list(p.metrics), "tasks": list(p.tasks),
                   "limit": p.image_limit(config.limit)} for p in config.plans],
    }
    versions = {codec.name: codec.version for codec in prepared.codecs}
    run = build_run(config.command, settings, versions, datasets, messages, errors)
    return Evaluation(run, write_reports(run, config.out), messages, errors)
