"""Atomic file output: a reader never sees a half-written file and a failure leaves nothing. Also
the names of a saved component's files and their hashes, which a bundle is read and identified
by before torch is imported (`versacodec.bundle`).

`atomic_write_bytes(path, data, replace=False)` also never replaces a file: the complete
temporary is hard-linked to the final name, which fails if any file took that name meanwhile
(another run, another program), so a check for an existing output made at start cannot be
outrun by a file that appears while the output is computed.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from pathlib import Path

from versacodec.errors import InputError

CONFIG_NAME = "config.json"  # a saved component's settings (versacodec.modeling)
WEIGHTS_NAME = "model.safetensors"  # and its tensors

# link() is not offered everywhere (FAT, some network and FUSE file systems).
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


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


def _publish_without_replacing(temporary: str, path: Path) -> None:
    try:
        os.link(temporary, path)  # FileExistsError when the name is taken, whatever by
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        # No hard links here: claim the name exclusively, then move the finished file over our claim.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.replace(temporary, path)
    else:
        os.unlink(temporary)


def atomic_write_bytes(path: str | Path, data: bytes, *, replace: bool = True) -> None:
    """Write `data` to `path` in one step. `replace=False`: raise FileExistsError, leaving the file
    as it is, if `path` exists when the data is complete."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
    try:
        if hasattr(os, "fchmod"):  # POSIX; Windows files have no such modes
            os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp_name, path)
        else:
            _publish_without_replacing(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def writable_folder(folder: Path) -> None:
    """Create `folder` (and its parents) and check that a file can be written in it, so that a
    command that writes there at the end fails at its start instead (InputError)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise InputError(f"cannot write to the output folder {folder}: {exc.strerror or exc}") from exc


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
