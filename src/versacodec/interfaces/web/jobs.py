"""Background jobs with progress for the web page, and bounded in-memory storage.

Coding, decoding and baseline searches take seconds to minutes on a CPU, longer than a request
should hang, so a request starts a job and the page polls its progress. Jobs run one at a time
on a single worker thread: the models would only compete for the same cores, and one thread
keeps torch's state single-threaded.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from versacodec.errors import VersacodecError

log = logging.getLogger(__name__)
T = TypeVar("T")


class Recent(Generic[T]):
    """A thread-safe id → value map that forgets the oldest entries beyond `capacity` entries or
    `max_bytes` (as `size` counts them; the newest entry stays even alone above it), so a
    long-running server does not keep every upload and result in memory. `forget` is called with
    every value dropped."""

    def __init__(self, capacity: int, max_bytes: int | None = None, size: Callable[[T], int] = lambda _: 0,
                 forget: Callable[[T], None] = lambda _: None) -> None:
        self.capacity, self.max_bytes = capacity, max_bytes
        self._size, self._forget = size, forget
        self._items: OrderedDict[str, tuple[T, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def add(self, value: T) -> str:
        key = uuid.uuid4().hex[:16]
        dropped = []
        with self._lock:
            self._items[key] = (value, self._size(value))
            self._bytes += self._items[key][1]
            while len(self._items) > 1 and (len(self._items) > self.capacity or (
                    self.max_bytes is not None and self._bytes > self.max_bytes)):
                _, (old, old_size) = self._items.popitem(last=False)
                self._bytes -= old_size
                dropped.append(old)
        for old in dropped:
            self._forget(old)
        return key

    def get(self, key: str) -> T | None:
        with self._lock:
            entry = self._items.get(key)
        return None if entry is None else entry[0]

    @property
    def bytes(self) -> int:
        with self._lock:
            return self._bytes


class JobCancelled(Exception):
    """Raised inside a job's work at its next progress report once the job was forgotten."""


# A job's work: receives the reporting function (stage text, steps done, steps in all).
Work = Callable[[Callable[[str, int, int], None]], Any]


@dataclass
class Job:
    state: str = "queued"  # queued → running → done | failed | cancelled
    stage: str = "waiting for the previous job"
    done: int = 0
    total: int = 1
    error: str | None = None
    result: Any = None
    future: Future | None = None
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def report(self, stage: str, done: int, total: int) -> None:
        if self._cancelled.is_set():
            raise JobCancelled
        with self._lock:
            self.stage, self.done, self.total = stage, done, total

    def cancel(self) -> None:
        """Stop a job nobody can ask about any more: a queued one never starts, a running one stops
        at its next stage."""
        self._cancelled.set()
        if self.future is not None:
            self.future.cancel()
        with self._lock:
            if self.state in ("queued", "running"):
                self.state, self.result = "cancelled", None

    def snapshot(self) -> dict:
        with self._lock:
            return {"state": self.state, "stage": self.stage, "progress": self.done / max(self.total, 1),
                    "error": self.error}

    def run(self, work: Work) -> None:
        with self._lock:
            if self._cancelled.is_set():
                return
            self.state = "running"
        result, error = None, None
        try:
            result = work(self.report)
        except JobCancelled:
            return
        except VersacodecError as exc:
            error = str(exc)
        except Exception as exc:  # a bug: the page still gets one line, the log the traceback
            log.exception("job failed")
            error = f"internal error: {type(exc).__name__}: {exc}"
        with self._lock:
            if self._cancelled.is_set():
                return
            self.result, self.error = result, error
            self.state = "failed" if error is not None else "done"
            if error is None:
                self.stage, self.done = "done", self.total


class JobRunner:
    def __init__(self, capacity: int) -> None:
        # A job that expires is cancelled: nobody can fetch its result, so it must not keep the worker busy.
        self.jobs: Recent[Job] = Recent(capacity, forget=Job.cancel)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="versacodec-job")

    def submit(self, work: Work) -> str:
        job = Job()
        job.future = self._executor.submit(job.run, work)
        return self.jobs.add(job)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
