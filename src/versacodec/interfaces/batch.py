"""Batch mode: code every image under a folder, on local worker processes or on a Ray cluster.

    versacodec batch IN_DIR OUT_DIR [--bpp B | --quality Q] [--task T] [--workers N]
                     [--engine local|ray] [--decode] [--overwrite]

Compresses every image Pillow reads under IN_DIR (recursively) to OUT_DIR/<same path>.vcx, or
with --decode every .vcx stream to OUT_DIR/<same path>.png. An output that already exists and is
valid is skipped, so re-running a stopped job resumes it; nothing is replaced without
--overwrite. An image that fails is recorded and the run goes on. OUT_DIR/manifest.csv (written
atomically at the end, also when interrupted) has one row per input: file, bytes (of the stream),
bpp, seconds, status (ok, skipped or error) and message. Exit status 0 when every input is ok or
skipped, 1 when any failed, 2 for a usage error (nothing run).

Workers return output bytes and the driver writes them. Ray actors are also sent the input bytes,
so a Ray cluster needs no shared file system, only the model folder on every node (or the
shipped model). Each worker process or actor loads the model once.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image
from tqdm import tqdm

from versacodec.container.format import Stream
from versacodec.errors import InputError, VersacodecError
from versacodec.fileio import atomic_write_bytes

if TYPE_CHECKING:
    from versacodec.codec import Codec

MANIFEST_NAME = "manifest.csv"
MANIFEST_FIELDS = ("file", "bytes", "bpp", "seconds", "status", "message")
STREAM_SUFFIX = ".vcx"
DECODED_SUFFIX = ".png"
ENGINES = ("local", "ray")
EXIT_SOME_FAILED = 1


@dataclass(frozen=True)
class BatchSettings:
    """What every worker needs to code one input (picklable, sent to each worker once)."""

    model: str | None = None
    decode: bool = False
    bpp: float | None = None
    quality: int | None = None
    task: str | None = None


@dataclass(frozen=True)
class Item:
    file: str  # path relative to IN_DIR, "/"-separated: the manifest key
    source: Path
    target: Path


@dataclass
class Outcome:
    """One manifest row."""

    file: str
    status: str  # "ok", "skipped" or "error"
    bytes: int | None = None
    bpp: float | None = None
    seconds: float | None = None
    message: str = ""

    def row(self) -> dict[str, str]:
        return {"file": self.file, "bytes": "" if self.bytes is None else str(self.bytes),
                "bpp": "" if self.bpp is None else f"{self.bpp:.6f}",
                "seconds": "" if self.seconds is None else f"{self.seconds:.3f}",
                "status": self.status, "message": self.message}


@dataclass
class BatchReport:
    outcomes: list[Outcome] = field(default_factory=list)
    manifest: Path | None = None

    def count(self, status: str) -> int:
        return sum(outcome.status == status for outcome in self.outcomes)

    @property
    def failed(self) -> int:
        return self.count("error")


@dataclass(frozen=True)
class WorkResult:
    output: bytes | None  # the file to write; None on error
    stream_bytes: int = 0
    bpp: float = 0.0
    seconds: float = 0.0
    error: str = ""


# --------------------------------------------------------------------------- workers
_codecs: dict[str | None, Codec] = {}  # per worker process: the model, loaded on first use


def _codec(settings: BatchSettings) -> Codec:
    if settings.model not in _codecs:
        from versacodec.codec import Codec

        _codecs[settings.model] = Codec.from_pretrained(settings.model)
    return _codecs[settings.model]


def code_one(settings: BatchSettings, data: bytes) -> WorkResult:
    """Compress (or decode) one input's bytes. Any failure becomes an error result, never an exception,
    so one bad image cannot stop the batch."""
    try:
        codec = _codec(settings)
        started = time.perf_counter()
        if settings.decode:
            decoded = codec.decompress(data)
            buffer = io.BytesIO()
            decoded.image.save(buffer, format="PNG")
            header = decoded.header
            return WorkResult(buffer.getvalue(), len(data), len(data) * 8 / (header.width * header.height),
                              time.perf_counter() - started)
        task = {} if settings.task is None else {"task": settings.task}
        encoded = codec.compress(data, bpp=settings.bpp, quality=settings.quality, **task)
        return WorkResult(encoded.data, len(encoded.data), encoded.bits_per_pixel, time.perf_counter() - started)
    except VersacodecError as exc:
        return WorkResult(None, error=str(exc))
    except Exception as exc:  # a bug or resource failure on one input: record it, keep going
        return WorkResult(None, error=f"{type(exc).__name__}: {exc}")


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _read_and_code(settings: BatchSettings, path: Path) -> WorkResult:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return WorkResult(None, error=f"cannot read: {exc.strerror}")
    return code_one(settings, data)


def _local(items: list[Item], settings: BatchSettings, workers: int) -> Iterator[tuple[Item, WorkResult]]:
    if workers == 1:
        for item in items:
            yield item, _read_and_code(settings, item.source)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    # spawn, not fork: forking a process whose torch thread pools are running can deadlock.
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(threads,)) as pool:
        pending: dict[Future[WorkResult], Item] = {}
        queue = iter(items)
        try:
            while True:
                # A bounded window keeps memory flat however many inputs there are.
                for item in queue:
                    pending[pool.submit(_read_and_code, settings, item.source)] = item
                    if len(pending) >= 2 * workers:
                        break
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield pending.pop(future), future.result()
        finally:
            pool.shutdown(cancel_futures=True)


class _RayWorker:
    """One Ray actor: loads the model once, then codes the inputs it is sent."""

    def __init__(self, settings: BatchSettings) -> None:
        _init_worker(1)
        self.settings = settings

    def run(self, index: int, data: bytes) -> tuple[int, WorkResult]:
        return index, code_one(self.settings, data)


def _ray(items: list[Item], settings: BatchSettings, workers: int | None) -> Iterator[tuple[Item, WorkResult]]:
    try:
        import ray
        from ray.util import ActorPool
    except ImportError as exc:
        raise InputError("--engine ray needs the ray package (pip install ray)") from exc
    if not ray.is_initialized():
        ray.init()  # joins the cluster named by RAY_ADDRESS, else starts a local one
    count = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    actor = ray.remote(num_cpus=1)(_RayWorker)
    pool = ActorPool([actor.remote(settings) for _ in range(max(1, min(count, len(items))))])
    submitted: dict[int, Item] = {}

    def collect() -> tuple[Item, WorkResult]:
        index, result = pool.get_next_unordered()
        return submitted.pop(index), result

    for index, item in enumerate(items):
        try:
            data = item.source.read_bytes()
        except OSError as exc:
            yield item, WorkResult(None, error=f"cannot read: {exc.strerror}")
            continue
        submitted[index] = item
        pool.submit(lambda worker, job: worker.run.remote(*job), (index, data))
        # Read the next input only when an actor is free: memory stays flat however many inputs there are.
        while not pool.has_free() and pool.has_next():
            yield collect()
    while pool.has_next():
        yield collect()


# --------------------------------------------------------------------------- driver
def readable_suffixes() -> set[str]:
    """Extensions of the image formats Pillow can open here."""
    return {ext for ext, name in Image.registered_extensions().items() if name in Image.OPEN} - {STREAM_SUFFIX}


def find_inputs(in_dir: Path, out_dir: Path, decode: bool) -> list[Item]:
    suffixes = {STREAM_SUFFIX} if decode else readable_suffixes()
    target_suffix = DECODED_SUFFIX if decode else STREAM_SUFFIX
    skip = out_dir.resolve()
    items = []
    for root, dirs, files in os.walk(in_dir):
        # Hidden entries (and our own .part temporaries) are not inputs; OUT_DIR may sit inside IN_DIR.
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (Path(root) / d).resolve() != skip)
        for name in sorted(files):
            source = Path(root) / name
            if name.startswith(".") or source.suffix.lower() not in suffixes:
                continue
            relative = source.relative_to(in_dir)
            items.append(Item(relative.as_posix(), source, out_dir / relative.with_suffix(target_suffix)))
    return items


def _existing(item: Item, decode: bool) -> Outcome | None:
    """An outcome for an item whose output already exists: skipped when it is valid, else an error
    (a file we did not write; atomic writes never leave partial outputs)."""
    if not item.target.exists():
        return None
    try:
        if decode:
            with Image.open(item.target) as image:
                image.verify()
            stream = item.source.read_bytes()
        else:
            stream = item.target.read_bytes()
        header = Stream.from_bytes(stream).header
    except (OSError, SyntaxError, ValueError, VersacodecError):
        return Outcome(item.file, "error", message=f"{item.target} exists and is not a valid output; "
                       "pass --overwrite to replace it")
    return Outcome(item.file, "skipped", len(stream), len(stream) * 8 / (header.width * header.height),
                   message="output exists")


def write_manifest(path: Path, outcomes: Iterable[Outcome]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(outcome.row() for outcome in sorted(outcomes, key=lambda o: o.file))
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def _check(in_dir: Path, settings: BatchSettings, workers: int | None, engine: str) -> None:
    if not in_dir.is_dir():
        raise InputError(f"input folder {in_dir} does not exist")
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(ENGINES)}")
    if workers is not None and workers < 1:
        raise InputError("--workers must be at least 1")
    if settings.bpp is not None and settings.quality is not None:
        raise InputError("give either --bpp or --quality, not both")
    if settings.decode and (settings.bpp is not None or settings.quality is not None or settings.task is not None):
        raise InputError("--bpp, --quality and --task apply to compression, not --decode")
    if settings.task is not None:
        from versacodec.semantics.profiles import load_profile

        load_profile(settings.task)  # an unknown task or a broken profile fails once, before any image
    from versacodec.bundle import read_manifest, resolve_model_dir  # imports torch: only once a batch runs

    read_manifest(resolve_model_dir(settings.model))  # a missing or broken model fails here, once, not on every image


def run_batch(in_dir: str | Path, out_dir: str | Path, settings: BatchSettings = BatchSettings(), *,
              workers: int | None = None, engine: str = "local", overwrite: bool = False,
              progress: bool = False) -> BatchReport:
    """Code every input under `in_dir` into `out_dir` (see the module docstring) and write the manifest.

    `workers`: local processes (default 1: in this process) or Ray actors (default: the cluster's CPUs).

    >>> from PIL import Image
    >>> (photos / "holiday").mkdir(parents=True)
    >>> Image.new("RGB", (64, 48), (30, 90, 160)).save(photos / "holiday" / "sea.png")
    >>> report = run_batch(photos, streams, BatchSettings(model=str(model_dir), bpp=0.3))
    >>> [(o.file, o.status) for o in report.outcomes], (streams / "holiday" / "sea.vcx").exists()
    ([('holiday/sea.png', 'ok')], True)
    >>> run_batch(photos, streams, BatchSettings(model=str(model_dir), bpp=0.3)).outcomes[0].status
    'skipped'
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    _check(in_dir, settings, workers, engine)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = BatchReport(manifest=out_dir / MANIFEST_NAME)
    todo: list[Item] = []
    claimed: dict[Path, str] = {}
    for item in find_inputs(in_dir, out_dir, settings.decode):
        if item.target in claimed:
            report.outcomes.append(Outcome(item.file, "error", message=f"{claimed[item.target]} already writes "
                                           f"{item.target.name}; rename one of them"))
            continue
        claimed[item.target] = item.file
        existing = None if overwrite else _existing(item, settings.decode)
        if existing is None:
            todo.append(item)
        else:
            report.outcomes.append(existing)
    results = _ray(todo, settings, workers) if engine == "ray" else _local(todo, settings, workers or 1)
    bar = tqdm(total=len(todo) + len(report.outcomes), initial=len(report.outcomes), unit="image",
               desc="decode" if settings.decode else "compress", disable=not progress, file=sys.stderr)
    try:
        for item, result in results:
            report.outcomes.append(_finish(item, result))
            bar.update()
            bar.set_postfix(failed=report.failed, refresh=False)
    finally:
        bar.close()
        write_manifest(report.manifest, report.outcomes)
    return report


def _finish(item: Item, result: WorkResult) -> Outcome:
    if result.output is None:
        return Outcome(item.file, "error", message=result.error)
    try:
        item.target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(item.target, result.output)
    except OSError as exc:
        return Outcome(item.file, "error", message=f"cannot write {item.target}: {exc.strerror}")
    return Outcome(item.file, "ok", result.stream_bytes, result.bpp, result.seconds)


# --------------------------------------------------------------------------- command line
def _command(args: argparse.Namespace) -> int:
    settings = BatchSettings(model=args.model, decode=args.decode, bpp=args.bpp, quality=args.quality,
                             task=args.task)
    report = run_batch(args.in_dir, args.out_dir, settings, workers=args.workers, engine=args.engine,
                       overwrite=args.overwrite, progress=not args.no_progress)
    print(f"{len(report.outcomes)} inputs: {report.count('ok')} coded, {report.count('skipped')} skipped, "
          f"{report.failed} failed; manifest {report.manifest}")
    return EXIT_SOME_FAILED if report.failed else 0


def add_batch_parser(commands: argparse._SubParsersAction) -> None:
    batch = commands.add_parser(
        "batch", help="compress (or --decode) every image in a folder tree",
        description="Compress every image under IN_DIR to OUT_DIR/<same path>.vcx (or, with --decode, every "
        ".vcx to .png). Existing valid outputs are skipped, so re-running resumes; nothing is replaced "
        "without --overwrite. A failing input is recorded in OUT_DIR/manifest.csv and skipped. Exit status: "
        "0 all ok or skipped, 1 some failed, 2 usage error.")
    batch.add_argument("in_dir", help="folder of images (searched recursively)")
    batch.add_argument("out_dir", help="output folder (created; the folder layout is kept)")
    rate = batch.add_mutually_exclusive_group()
    rate.add_argument("--bpp", type=float, help="target bits per pixel for every image")
    rate.add_argument("--quality", type=int, help="rate setting 0..100 for every image (default 75)")
    batch.add_argument("--task", help="machine task profile for task-structured streams (when supported)")
    batch.add_argument("--decode", action="store_true", help="decode .vcx streams to PNG instead")
    batch.add_argument("--workers", type=int,
                       help="worker processes (local, default 1) or Ray actors (default: the cluster's CPUs)")
    batch.add_argument("--engine", choices=ENGINES, default="local",
                       help="local process pool, or ray: the cluster in RAY_ADDRESS, else a local Ray instance")
    batch.add_argument("--overwrite", action="store_true", help="re-code inputs whose output exists")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")
    batch.add_argument("--model", metavar="DIR",
                       help="model bundle folder (default: $VERSACODEC_MODEL or the model shipped in the package)")
    batch.set_defaults(handler=_command)
