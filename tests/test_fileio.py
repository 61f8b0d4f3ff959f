import stat

import pytest

from versacodec.fileio import atomic_write_bytes


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_get_the_permissions_a_plain_open_gives(tmp_path):
    atomic_write_bytes(tmp_path / "out.vcx", b"data")
    (tmp_path / "plain").write_bytes(b"data")
    assert _mode(tmp_path / "out.vcx") == _mode(tmp_path / "plain")  # not mkstemp's owner-only 0o600
    assert (tmp_path / "out.vcx").read_bytes() == b"data"


def test_replacing_a_file_keeps_its_permissions_and_a_failure_leaves_nothing(tmp_path):
    target = tmp_path / "report.json"
    target.write_bytes(b"old")
    target.chmod(0o640)
    atomic_write_bytes(target, b"new")
    assert _mode(target) == 0o640 and target.read_bytes() == b"new"
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_without_replace_an_existing_file_is_kept_and_nothing_is_left(tmp_path):
    target = tmp_path / "out.vcx"
    atomic_write_bytes(target, b"first", replace=False)
    assert target.read_bytes() == b"first"
    with pytest.raises(FileExistsError):
        atomic_write_bytes(target, b"second", replace=False)
    assert target.read_bytes() == b"first" and [p.name for p in tmp_path.iterdir()] == ["out.vcx"]


def test_without_replace_a_file_system_without_links_still_never_replaces(tmp_path, monkeypatch):
    import errno
    import os

    def no_links(*_):
        raise OSError(errno.EPERM, "links not supported")

    monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "out.vcx"
    atomic_write_bytes(target, b"first", replace=False)
    with pytest.raises(FileExistsError):
        atomic_write_bytes(target, b"second", replace=False)
    assert target.read_bytes() == b"first" and [p.name for p in tmp_path.iterdir()] == ["out.vcx"]
