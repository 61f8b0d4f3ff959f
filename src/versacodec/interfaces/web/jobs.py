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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from versacodec.errors import VersacodecError

log = logging.getLogger(__name__)
T = TypeVar("T")


class Recent(Generic[T]):
    """A thread-safe id → value map that forgets the oldest entries beyond `capacity`, so a
    long-running server does not keep every upload and result in memory."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, value: T) -> str:
        key = uuid.uuid4().hex[:16]
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return key

    def get(self, key: str) -> T | None:
        with self._lock:
            return self._items.get(key)


# A job's work: receives the reporting function (stage text, steps done, steps in all).
Work = Callable[[Callable[[str, int, int], None]], Any]


@dataclass
class Job:
    state: str = "queued"  # queued → running → done | failed
    stage: str = "waiting for the previous job"
    done: int = 0
    total: int = 1
    error: str | None = None
    result: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def report(self, stage: str, done: int, total: int) -> None:
        with self._lock:
            self.stage, self.done, self.total = stage, done, total

    def snapshot(self) -> dict:
        with self._lock:
            return {"state": self.state, "stage": self.stage, "progress": self.done / max(self.total, 1),
                    "error": self.error}

    def run(self, work: Work) -> None:
        with self._lock:
            self.state = "running"
        result, error = None, None
        try:
            result = work(self.report)
        except VersacodecError as exc:
            error = str(exc)
        except Exception as exc:  # a bug: the page still gets one line, the log the traceback
            log.exception("job failed")
            error = f"internal error: {type(exc).__name__}: {exc}"
        with self._lock:
            self.result, self.error = result, error
            self.state = "failed" if error is not None else "done"
            if error is None:
                self.stage, self.done = "done", self.total


class JobRunner:
    def __init__(self, capacity: int) -> None:
        self.jobs: Recent[Job] = Recent(capacity)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="versacodec-job")

    def submit(self, work: Work) -> str:
        job = Job()
        key = self.jobs.add(job)
        self._executor.submit(job.run, work)
        return key

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
