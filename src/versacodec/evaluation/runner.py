"""Running an evaluation: plan the work, execute it (inline or in a process pool), resumably.

The unit of work is one image × one codec at every requested rate: the original is loaded once,
and task predictions on the original (needed by reference-based tasks) are reused across rates.
Each (image, codec, rate) result is stored as soon as it exists (`ResultStore`), so a rerun of
the same command continues where an interrupted one stopped, and a rerun with more metrics or
tasks computes only what is missing. Records are kept per codec version (another model under the
same codec name gets its own, and neither evicts the other); one made under another rate rule is
recomputed.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from versacodec.errors import BudgetTooSmall, InputError
from versacodec.evaluation.cache import EncodeCache, ResultStore
from versacodec.evaluation.codecs import ImageCodec
from versacodec.evaluation.datasets import Dataset, DatasetItem, DatasetMissing, load_image, open_dataset
from versacodec.evaluation.quality import ALL_METRICS, DISTRIBUTION_METRICS, PER_IMAGE_METRICS
from versacodec.evaluation.tasks import TASKS, Task, task_names

UNCOMPRESSED = "uncompressed"
ORIGINAL_VERSION = "original pixels"


@dataclass(frozen=True)
class DatasetPlan:
    """What to measure on one dataset."""

    dataset: str  # a known name or a folder
    metrics: tuple[str, ...]
    tasks: tuple[str, ...]
    limit: int | None = None  # first N images of this dataset; RunConfig.limit (--limit) overrides it

    def image_limit(self, run_limit: int | None) -> int | None:
        return self.limit if run_limit is None else run_limit


@dataclass
class RunConfig:
    plans: list[DatasetPlan]
    codecs: list[str]
    rates: list[float]
    out: Path
    cache_dir: Path
    limit: int | None = None
    workers: int = 1
    always_shrink: bool = False
    model: str | None = None
    anchor: str | None = None
    fresh: bool = False
    progress: bool = True
    command: str = ""

    def validate(self) -> None:
        if not self.codecs:
            raise InputError("no codecs given", options=("codecs",))
        if not self.rates or any(not rate > 0 for rate in self.rates):
            raise InputError("target rates must be positive bits per pixel", options=("bpp",))
        if self.workers < 1:
            raise InputError("workers must be at least 1", options=("workers",))
        for plan in self.plans:
            unknown = [m for m in plan.metrics if m not in ALL_METRICS]
            if unknown:
                raise InputError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(ALL_METRICS)}")
            task_names(list(plan.tasks))


@dataclass(frozen=True)
class Job:
    dataset: str
    item: DatasetItem
    codec: str | None  # None: the uncompressed original (reference rows)
    rates: tuple[float, ...]
    metrics: tuple[str, ...]
    tasks: tuple[str, ...]
    results: Path
    fresh: bool

    @property
    def label(self) -> str:
        return self.codec or UNCOMPRESSED


@dataclass
class PreparedDataset:
    """A dataset with the metrics and tasks that will actually run on it."""

    dataset: Dataset
    metrics: tuple[str, ...]
    tasks: list[Task]


@dataclass
class Prepared:
    datasets: list[PreparedDataset]
    codecs: list[ImageCodec]
    messages: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- planning
def results_root(cache_dir: Path) -> Path:
    """Per-image records live in the cache (shared by runs, checked by codec version), not in --out."""
    return cache_dir / "results"


def encodes_root(cache_dir: Path) -> Path:
    return cache_dir / "encodes"


def prepare(config: RunConfig) -> Prepared:
    """Open datasets, check codecs and task models; everything unavailable is skipped with a message."""
    from versacodec.evaluation.catalog import make_codec

    config.validate()
    messages: list[str] = []
    codecs: list[ImageCodec] = []
    for spec in dict.fromkeys(config.codecs):
        codec = make_codec(spec, always_shrink=config.always_shrink, model=config.model)
        ok, reason = codec.available()
        if ok:
            codecs.append(codec)
        else:
            messages.append(f"skipped codec {spec}: {reason}")
    datasets: list[PreparedDataset] = []
    for plan in config.plans:
        try:
            dataset = open_dataset(plan.dataset, plan.image_limit(config.limit))
        except DatasetMissing as exc:
            messages.append(f"skipped dataset: {exc}")
            continue
        tasks: list[Task] = []
        for name in task_names(list(plan.tasks)):
            task = TASKS[name]()
            if not task.applies_to(dataset):
                kinds = " or ".join(sorted(task.kinds or ()))
                messages.append(f"skipped task {name} on {dataset.name}: it needs a dataset of kind {kinds}, "
                                f"this one is of kind {dataset.kind}")
                continue
            ok, reason = task.available()
            if ok:
                tasks.append(task)
            else:
                messages.append(f"skipped task {name}: {reason}")
        datasets.append(PreparedDataset(dataset, plan.metrics, tasks))
    if not datasets:
        raise DatasetMissing("no dataset is available: " + "; ".join(messages))
    if not codecs:
        raise InputError("no codec is available: " + "; ".join(messages))
    return Prepared(datasets, codecs, messages)


def plan_jobs(config: RunConfig, prepared: Prepared) -> list[Job]:
    jobs: list[Job] = []
    results = results_root(config.cache_dir)
    for entry in prepared.datasets:
        task_list = tuple(task.name for task in entry.tasks)
        needs_reference_row = bool(task_list) or any(m in DISTRIBUTION_METRICS for m in entry.metrics)
        for item in entry.dataset.items:
            if needs_reference_row:
                jobs.append(Job(entry.dataset.key, item, None, (), entry.metrics, task_list, results, config.fresh))
            jobs.extend(Job(entry.dataset.key, item, codec.name, tuple(config.rates), entry.metrics, task_list,
                            results, config.fresh) for codec in prepared.codecs)
    return jobs


# --------------------------------------------------------------------------- one unit of work
class Worker:
    """Per-process state: codecs, task models and recent reference predictions, each loaded once."""

    REFERENCES_KEPT = 16

    def __init__(self, cache_dir: Path, always_shrink: bool, model: str | None) -> None:
        self.cache = EncodeCache(encodes_root(cache_dir))
        self.always_shrink = always_shrink
        self.model = model
        self._codecs: dict[str, ImageCodec] = {}
        self._tasks: dict[str, Task] = {}
        self._references: OrderedDict[tuple[str, Path], Any] = OrderedDict()

    def codec(self, spec: str) -> ImageCodec:
        if spec not in self._codecs:
            from versacodec.evaluation.catalog import make_codec

            self._codecs[spec] = make_codec(spec, cache=self.cache, always_shrink=self.always_shrink,
                                            model=self.model)
        return self._codecs[spec]

    def task(self, name: str) -> Task:
        if name not in self._tasks:
            self._tasks[name] = TASKS[name]()
        return self._tasks[name]

    def reference(self, task: Task, item: DatasetItem, original: Image.Image) -> Any:
        key = (task.name, item.path)
        if key not in self._references:
            self._references[key] = task.predict(original)
            if len(self._references) > self.REFERENCES_KEPT:
                self._references.popitem(last=False)
        return self._references[key]

    def run(self, job: Job) -> None:
        from versacodec.evaluation.quality import patch_features, per_image_metrics

        store = ResultStore(job.results)
        original = load_image(job.item.path)
        codec = None if job.codec is None else self.codec(job.codec)
        version = ORIGINAL_VERSION if codec is None else codec.version
        rule = None if codec is None else codec.rate_rule
        wants_features = any(m in DISTRIBUTION_METRICS for m in job.metrics)
        for rate in job.rates if codec is not None else (None,):
            old = None if job.fresh else store.load(job.dataset, job.label, version, rate, job.item.id)
            if old is not None and old.get("rate_rule") != rule:
                old = None
            record = old or {"image": job.item.id, "codec": job.label, "version": version, "rate_rule": rule,
                             "target_bpp": rate, "metrics": {}, "tasks": {}}
            features_path = store.features_path(job.dataset, job.label, version, rate, job.item.id)
            failed = bool(record.get("failure"))
            metrics = [] if codec is None or failed else [
                m for m in job.metrics if m in PER_IMAGE_METRICS and m not in record["metrics"]]
            features = wants_features and not failed and (old is None or not features_path.is_file())
            tasks = [self.task(name) for name in job.tasks if name not in record["tasks"]]
            if old is not None and not (metrics or features or tasks):
                continue
            decoded = original if codec is None else self._code(codec, original, rate, record)
            if decoded is not None:
                if metrics:
                    record["metrics"].update(per_image_metrics(original, decoded, metrics))
                if features:
                    store.save_features(features_path, patch_features(decoded))
            for task in tasks:
                prediction = None if decoded is None else task.predict(decoded)
                reference = self.reference(task, job.item, original) if task.uses_reference else None
                record["tasks"][task.name] = task.record(job.item, prediction, reference)
            store.save(job.dataset, job.label, version, rate, job.item.id, record)

    @staticmethod
    def _code(codec: ImageCodec, original: Image.Image, rate: float, record: dict) -> Image.Image | None:
        """Encode and decode; None when coding failed. Encodes come from the cache when seen before, so
        only the decode is timed."""
        if record.get("failure"):
            return None
        try:
            encoded = codec.encode(original, rate)
        except BudgetTooSmall as exc:
            record.update(failure=str(exc), bytes=0, bpp=0.0, setting=None, shrink=None)
            return None
        started = time.perf_counter()
        decoded = codec.decode(encoded)
        if decoded.size != original.size:
            raise RuntimeError(f"{codec.name} decoded {decoded.size}, expected {original.size}")
        record.update(failure=None, bytes=len(encoded.data), bpp=encoded.bpp, setting=encoded.setting,
                      shrink=encoded.shrink, decode_seconds=round(time.perf_counter() - started, 4))
        return decoded


# --------------------------------------------------------------------------- execution
_WORKER: Worker | None = None


def exit_with_parent(poll_seconds: float = 1.0) -> None:
    """End this process soon after the process that started it is gone (killed, or ended by
    SIGTERM), instead of finishing a job nobody will collect: a background thread watches the
    parent id, which changes when the parent dies and this process is re-parented."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _start_worker(cache_dir: Path, always_shrink: bool, model: str | None, one_thread: bool) -> None:
    global _WORKER
    if one_thread:  # in a pool the processes are the parallelism; torch threads would oversubscribe
        import torch

        torch.set_num_threads(1)
        exit_with_parent()
    _WORKER = Worker(cache_dir, always_shrink, model)


def _run_job(job: Job) -> str | None:
    """Run one job; an unexpected failure comes back as text so the rest of the run goes on."""
    assert _WORKER is not None
    try:
        _WORKER.run(job)
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(exc)).strip()
        return f"{job.dataset}/{job.label}/{job.item.id}: {detail}\n{traceback.format_exc(limit=-3)}"
    return None


def execute(jobs: Sequence[Job], config: RunConfig) -> list[str]:
    """Run every job; returns the error reports of jobs that failed."""
    from tqdm import tqdm

    errors: list[str] = []
    bar = tqdm(total=len(jobs), desc="evaluating", unit="job", disable=not config.progress, file=sys.stderr)
    if config.workers == 1:
        _start_worker(config.cache_dir, config.always_shrink, config.model, one_thread=False)
        for job in jobs:
            bar.set_postfix_str(f"{job.dataset} {job.label} {job.item.id}", refresh=False)
            if (error := _run_job(job)) is not None:
                errors.append(error)
            bar.update()
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # spawn: forked copies of a process that has run torch can deadlock in its thread pools.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max(1, min(config.workers, len(jobs))), mp_context=context,
                                 initializer=_start_worker,
                                 initargs=(config.cache_dir, config.always_shrink, config.model, True)) as pool:
            futures = [pool.submit(_run_job, job) for job in jobs]
            for future in as_completed(futures):
                if (error := future.result()) is not None:
                    errors.append(error)
                bar.update()
    bar.close()
    return errors
