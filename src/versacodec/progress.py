"""Progress of long work inside the codec (denoising steps, image tiles), shown by whoever asked.

The codec reports; it draws nothing. The command line installs a reporter (`reporting`) that puts
a bar on stderr for work that lasts, and -q installs none; the API, batch workers and the web page
install none, so the codec stays silent there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

# A reporter starts a stage of `total` units and returns the function that counts one unit done.
Reporter = Callable[[str, int], Callable[[], None]]

_reporter: ContextVar[Reporter | None] = ContextVar("versacodec_progress", default=None)


def _nothing() -> None:
    return None


def stage(name: str, total: int) -> Callable[[], None]:
    """Begin a stage of `total` units; call the result once per unit done."""
    reporter = _reporter.get()
    return _nothing if reporter is None else reporter(name, total)


@contextlib.contextmanager
def reporting(reporter: Reporter) -> Iterator[None]:
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)
