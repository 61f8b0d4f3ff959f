"""Atomic file output: a reader never sees a half-written file and a failure leaves nothing."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def _process_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


# Read once: setting it to read it is process-wide, so not something to do while threads write.
_UMASK = _process_umask()


def _mode_for(path: Path) -> int:
    """What a plain open() would give: the replaced file's permissions, else 0o666 less the umask
    (mkstemp's temporary is owner-only, which would leave reports and streams unreadable to others)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_UMASK


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
    try:
        if hasattr(os, "fchmod"):  # POSIX; Windows files have no such modes
            os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
