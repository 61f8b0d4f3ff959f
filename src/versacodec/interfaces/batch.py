"""Batch mode: code every image under a folder, on local worker processes or on a Ray cluster.

    versacodec batch IN_DIR OUT_DIR [--bpp B | --quality Q] [--task T] [--workers N]
                     [--engine local|ray] [--decode] [--overwrite]

Compresses every image Pillow reads under IN_DIR (recursively) to OUT_DIR/<same path>.vcx, or
with --decode every .vcx stream to OUT_DIR/<same path>.png (inputs that would share an output,
a.png and a.jpg, keep their whole name: a.png.vcx, a.jpg.vcx). An output that this batch made
from the same input with the same model and settings is skipped, so re-running a stopped job
resumes it (OUT_DIR/.versacodec-batch.jsonl records what made each output); nothing is replaced
without --overwrite. An image that fails is recorded and the run goes on. OUT_DIR/manifest.csv
(written atomically at the end, also when interrupted or terminated) has one row per input: file,
bytes (of the stream), bpp, seconds, status and message. Status ok: coded now; skipped: the output
this batch made from the same input with the same settings is there; kept: an output is there that
was not made from this input with these settings (an earlier run with other settings, a changed
input, or a file this batch did not write), left as it was, its bytes and bpp those of the file on
disk and the message saying which; error: the input failed, the message says why. Exit status 0
when every input is ok or skipped, 1 when any was kept or failed, 2 for a usage error (bad
settings or model, an output folder that cannot be written: nothing run).

Workers return output bytes and the driver writes them. Ray actors are also sent the input bytes,
so a Ray cluster needs no shared file system, only the model folder on every node (or the
shipped model). Each worker process or actor loads the model once.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image
from tqdm import tqdm

from versacodec.container.format import Stream
from versacodec.errors import InputError, VersacodecError
from versacodec.fileio import atomic_write_bytes, writable_folder
from versacodec.options import DEFAULT_QUALITY, EncodeOptions

if TYPE_CHECKING:
    from versacodec.codec import Codec

MANIFEST_NAME = "manifest.csv"
JOURNAL_NAME = ".versacodec-batch.jsonl"  # hidden: never taken for an input when OUT_DIR is inside IN_DIR
MANIFEST_FIELDS = ("file", "bytes", "bpp", "seconds", "status", "message")
STREAM_SUFFIX = ".vcx"
DECODED_SUFFIX = ".png"
ENGINES = ("local", "ray")
EXIT_SOME_FAILED = 1


@dataclass(frozen=True)
class BatchSettings:
    """What the user asked for (its fields, as given, identify the job in the resume journal)."""

    model: str | None = None
    decode: bool = False
    bpp: float | None = None
    quality: int | None = None
    task: str | None = None


@dataclass(frozen=True)
class Work:
    """What every worker needs to code one input (picklable, sent to each worker once)."""

    model: str | None
    encode: EncodeOptions | None  # None: decode the inputs


@dataclass(frozen=True)
class Item:
    file: str  # path relative to IN_DIR, "/"-separated: the manifest key
    source: Path
    target: Path


@dataclass
class Outcome:
    """One manifest row."""

    file: str
    status: str  # "ok", "skipped", "kept" or "error" (see the module docstring)
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

    @property
    def complete(self) -> bool:
        """Every input coded now or before with these settings."""
        return self.failed == 0 and self.count("kept") == 0


@dataclass(frozen=True)
class WorkResult:
    output: bytes | None  # the file to write; None on error
    stream_bytes: int = 0
    bpp: float = 0.0
    seconds: float = 0.0
    error: str = ""


# --------------------------------------------------------------------------- workers
_codecs: dict[str | None, Codec] = {}  # per worker process: the model, loaded on first use


def _codec(model: str | None) -> Codec:
    if model not in _codecs:
        from versacodec.codec import Codec

        _codecs[model] = Codec.from_pretrained(model)
    return _codecs[model]


def code_one(work: Work, data: bytes) -> WorkResult:
    """Compress (or decode) one input's bytes. Any failure becomes an error result, never an exception,
    so one bad image cannot stop the batch."""
    try:
        codec = _codec(work.model)
        started = time.perf_counter()
        if work.encode is None:
            decoded = codec.decode(data)
            buffer = io.BytesIO()
            decoded.image.save(buffer, format="PNG")
            header = decoded.header
            return WorkResult(buffer.getvalue(), len(data), len(data) * 8 / (header.width * header.height),
                              time.perf_counter() - started)
        encoded = codec.encode(data, work.encode)
        return WorkResult(encoded.data, len(encoded.data), encoded.bits_per_pixel, time.perf_counter() - started)
    except VersacodecError as exc:
        return WorkResult(None, error=str(exc))
    except Exception as exc:  # a bug or resource failure on one input: record it, keep going
        return WorkResult(None, error=f"{type(exc).__name__}: {exc}")


PARENT_CHECK_SECONDS = 1.0


def _exit_with(parent: int) -> None:
    """A worker whose driver is gone (killed, even with SIGKILL) has no one to send results to: exit."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)


def _init_worker(threads: int, parent: int | None = None) -> None:
    import torch

    torch.set_num_threads(threads)
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="versacodec-parent-watch").start()


def _read_and_code(work: Work, path: Path) -> WorkResult:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return WorkResult(None, error=f"cannot read: {exc.strerror}")
    return code_one(work, data)


def _local(items: list[Item], work: Work, workers: int) -> Iterator[tuple[Item, WorkResult]]:
    if workers == 1:
        for item in items:
            yield item, _read_and_code(work, item.source)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    # spawn, not fork: forking a process whose torch thread pools are running can deadlock.
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(threads, os.getpid())) as pool:
        pending: dict[Future[WorkResult], Item] = {}
        queue = iter(items)
        try:
            while True:
                # A bounded window keeps memory flat however many inputs there are.
                for item in queue:
                    pending[pool.submit(_read_and_code, work, item.source)] = item
                    if len(pending) >= 2 * workers:
                        break
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield pending.pop(future), future.result()
        except BaseException:
            # Interrupted or terminated: stop the workers now rather than wait for the inputs they hold.
            # The executor has no public way to do that; its process table is the only handle.
            for process in list(pool._processes.values()):
                process.terminate()
            raise
        finally:
            pool.shutdown(cancel_futures=True)


class _RayWorker:
    """One Ray actor: loads the model once, then codes the inputs it is sent."""

    def __init__(self, work: Work) -> None:
        _init_worker(1)
        self.work = work

    def run(self, index: int, data: bytes) -> tuple[int, WorkResult]:
        return index, code_one(self.work, data)


def _ray(items: list[Item], work: Work, workers: int | None) -> Iterator[tuple[Item, WorkResult]]:
    try:
        import ray
        from ray.util import ActorPool
    except ImportError as exc:
        raise InputError("--engine ray needs the ray package (pip install ray)") from exc
    if not ray.is_initialized():
        ray.init()  # joins the cluster named by RAY_ADDRESS, else starts a local one
    count = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    actor = ray.remote(num_cpus=1)(_RayWorker)
    pool = ActorPool([actor.remote(work) for _ in range(max(1, min(count, len(items))))])
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
    # a.png and a.jpg would share a.vcx: such inputs keep their whole name (a.png.vcx, a.jpg.vcx).
    shared = Counter(item.target for item in items)
    return [item if shared[item.target] == 1 else
            replace(item, target=item.target.with_name(Path(item.file).name + target_suffix)) for item in items]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Journal:
    """OUT_DIR/.versacodec-batch.jsonl: for every output this batch wrote, the key of what made it
    (model, settings and the input's content) and the output's own hash, one JSON line each,
    appended as outputs are written. Resume skips an output only when both still match, so the
    output of a rerun with other settings or of a changed input is not taken for done (without
    --overwrite it is reported and kept), nor is a file the user put there."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict[str, str]] = {}
        try:
            lines = path.read_text().splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            try:
                entry = json.loads(line)
                self.entries[entry["output"]] = entry
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a kill: that output is simply not known to be finished

    def matches(self, name: str, key: str, output: bytes) -> bool:
        entry = self.entries.get(name)
        return entry is not None and entry.get("key") == key and entry.get("sha256") == _sha256(output)

    def made(self, name: str, output: bytes) -> bool:
        """Whether this batch wrote `output` at `name` (with whatever settings)."""
        entry = self.entries.get(name)
        return entry is not None and entry.get("sha256") == _sha256(output)

    def record(self, name: str, key: str, output: bytes) -> None:
        entry = {"output": name, "key": key, "sha256": _sha256(output)}
        self.entries[name] = entry
        with open(self.path, "a") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def _existing(item: Item, out_dir: Path, key: str, journal: Journal, decode: bool) -> Outcome:
    """The outcome for an item whose output exists: skipped when this batch made it from the same
    input with the same settings, else kept (nothing is replaced without --overwrite), with the
    size of the stream on disk and why it was not taken as done."""
    try:
        output = item.target.read_bytes()
    except OSError as exc:
        return Outcome(item.file, "error", message=f"{item.target} exists and cannot be read: {exc.strerror}")
    name = item.target.relative_to(out_dir).as_posix()
    try:
        stream = item.source.read_bytes() if decode else output
        header = Stream.from_bytes(stream).header
        size = {"bytes": len(stream), "bpp": len(stream) * 8 / (header.width * header.height)}
    except (OSError, VersacodecError):
        size = {}  # not a stream (a file of the user's): nothing to say of its size
    if journal.matches(name, key, output):
        return Outcome(item.file, "skipped", **size, message="output exists")
    why = ("made by an earlier batch with other settings or from another version of this input"
           if journal.made(name, output) else "not written by this batch")
    return Outcome(item.file, "kept", **size, message=f"{item.target} exists, {why}: kept as it is; pass "
                   "--overwrite to re-code it")


def write_manifest(path: Path, outcomes: Iterable[Outcome]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(outcome.row() for outcome in sorted(outcomes, key=lambda o: o.file))
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def _check(in_dir: Path, settings: BatchSettings, workers: int | None, engine: str) -> tuple[Work, str]:
    """Refuse a bad job before any input is read (a usage error, exit 2), and return the work and
    what identifies the model and settings in every input's resume key."""
    if not in_dir.is_dir():
        raise InputError(f"input folder {in_dir} does not exist")
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(ENGINES)}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError("--workers must be at least 1")
    if settings.decode and (settings.bpp is not None or settings.quality is not None or settings.task is not None):
        raise InputError("--bpp, --quality and --task apply to compression, not --decode")
    from versacodec.bundle import (
        DIRECT_DECODER,
        component_hash,
        quality_levels,
        read_manifest,
        resolve_model_dir,
        weights_hash,
    )
    from versacodec.options import check_quality_level

    # Bad settings, an unknown task or a broken profile, a missing or broken model: each fails here, once.
    options = None if settings.decode else EncodeOptions.of(bpp=settings.bpp, quality=settings.quality,
                                                            task=settings.task)
    root = resolve_model_dir(settings.model)
    manifest = read_manifest(root)
    if options is not None and options.rate.quality is not None:  # from the config: no torch before a refusal
        check_quality_level(options.rate.quality, quality_levels(root, manifest))
    identity = {"model_id": manifest.model_id, "weights": weights_hash(root, manifest).hex(),
                "settings": {**asdict(settings), "model": None}}
    if settings.decode:  # decoded pixels depend on the decoders too, which the weights hash does not cover
        identity["decoders"] = {name: (digest.hex() if (digest := component_hash(root, manifest, name)) else None)
                                for name in ("generative", DIRECT_DECODER)}
    return Work(settings.model, options), json.dumps(identity, sort_keys=True)


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
    work, identity = _check(in_dir, settings, workers, engine)
    # Checked before any input is coded: otherwise every output, the journal and the manifest fail at the end.
    writable_folder(out_dir)
    report = BatchReport(manifest=out_dir / MANIFEST_NAME)
    journal = Journal(out_dir / JOURNAL_NAME)
    keys: dict[Item, str] = {}
    todo: list[Item] = []
    for item in find_inputs(in_dir, out_dir, settings.decode):
        try:
            keys[item] = _sha256((identity + "\0").encode() + item.source.read_bytes())
        except OSError as exc:
            report.outcomes.append(Outcome(item.file, "error", message=f"cannot read: {exc.strerror}"))
            continue
        if overwrite or not item.target.exists():
            todo.append(item)
        else:
            report.outcomes.append(_existing(item, out_dir, keys[item], journal, settings.decode))
    results = _ray(todo, work, workers) if engine == "ray" else _local(todo, work, workers or 1)
    bar = tqdm(total=len(todo) + len(report.outcomes), initial=len(report.outcomes), unit="image",
               desc="decode" if settings.decode else "compress", disable=not progress, file=sys.stderr)
    try:
        for item, result in results:
            report.outcomes.append(_finish(item, result, out_dir, keys[item], journal, overwrite))
            bar.update()
            bar.set_postfix(failed=report.failed, refresh=False)
    finally:
        bar.close()
        try:
            write_manifest(report.manifest, report.outcomes)
        except OSError as exc:  # the folder was writable at the start; it may not be any more
            raise InputError(f"cannot write the manifest {report.manifest}: {exc.strerror or exc}") from exc
    return report


def _finish(item: Item, result: WorkResult, out_dir: Path, key: str, journal: Journal, overwrite: bool) -> Outcome:
    if result.output is None:
        return Outcome(item.file, "error", message=result.error)
    try:
        item.target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(item.target, result.output, replace=overwrite)
        journal.record(item.target.relative_to(out_dir).as_posix(), key, result.output)
    except FileExistsError:
        return Outcome(item.file, "error", message=f"{item.target} was created while coding; kept it "
                       "(pass --overwrite to replace it)")
    except OSError as exc:
        return Outcome(item.file, "error", message=f"cannot write {item.target}: {exc.strerror}")
    return Outcome(item.file, "ok", result.stream_bytes, result.bpp, result.seconds)


# --------------------------------------------------------------------------- command line
def _terminated(signal_number: int, _frame) -> None:
    # Unwinds like Ctrl-C, so the manifest is written on the way out; 128 + n is the shell's convention.
    sys.exit(128 + signal_number)


def _command(args: argparse.Namespace) -> int:
    settings = BatchSettings(model=args.model, decode=args.decode, bpp=args.bpp, quality=args.quality,
                             task=args.task)
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        report = run_batch(args.in_dir, args.out_dir, settings, workers=args.workers, engine=args.engine,
                           overwrite=args.overwrite, progress=not (args.no_progress or args.quiet))
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not args.quiet:
        kept = f"{report.count('kept')} kept (outputs there made otherwise; --overwrite re-codes them), " \
            if report.count("kept") else ""
        print(f"{len(report.outcomes)} inputs: {report.count('ok')} coded, {report.count('skipped')} skipped, "
              f"{kept}{report.failed} failed; manifest {report.manifest}", file=sys.stderr)
    return 0 if report.complete else EXIT_SOME_FAILED


def add_batch_parser(commands: argparse._SubParsersAction) -> None:
    batch = commands.add_parser(
        "batch", help="compress (or --decode) every image in a folder tree",
        description="Compress every image under IN_DIR to OUT_DIR/<same path>.vcx (or, with --decode, every "
        ".vcx to .png). Outputs made from the same input with the same settings are skipped, so re-running "
        "resumes; nothing is replaced without --overwrite. A failing input is recorded in OUT_DIR/manifest.csv "
        "and skipped. Exit status: 0 all ok or skipped, 1 some failed, 2 usage error (nothing run).")
    batch.add_argument("in_dir", help="folder of images (searched recursively)")
    batch.add_argument("out_dir", help="output folder (created; the folder layout is kept)")
    batch.add_argument("--bpp", type=float, help="target bits per pixel for every image")
    batch.add_argument("--quality", type=int, help=f"rate setting for every image (default {DEFAULT_QUALITY})")
    batch.add_argument("--task", help="machine task profile for task-structured streams (see compress --task)")
    batch.add_argument("--decode", action="store_true", help="decode .vcx streams to PNG instead")
    batch.add_argument("--workers", type=int,
                       help="worker processes (local, default 1) or Ray actors (default: the cluster's CPUs)")
    batch.add_argument("--engine", choices=ENGINES, default="local",
                       help="local process pool, or ray: the cluster in RAY_ADDRESS, else a local Ray instance")
    batch.add_argument("--overwrite", action="store_true", help="re-code inputs whose output exists")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")
    batch.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary line")
    batch.add_argument("--model", metavar="DIR",
                       help="model bundle folder (default: $VERSACODEC_MODEL or the model shipped in the package)")
    batch.set_defaults(handler=_command)
