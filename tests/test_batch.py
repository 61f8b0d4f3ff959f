"""Batch mode: layout, manifest, resume, no overwrite, failures recorded, local workers and Ray."""

import csv
from pathlib import Path

import pytest

from conftest import natural_image
from versacodec.container.format import Stream
from versacodec.interfaces.batch import BatchSettings, run_batch
from versacodec.interfaces.cli import main


def make_photos(root: Path, count: int, corrupt: bool = False) -> Path:
    for index in range(count):
        folder = root / ("a" if index % 2 else "b/c")
        folder.mkdir(parents=True, exist_ok=True)
        natural_image(48 + 8 * (index % 3), 40, seed=index).save(folder / f"img{index}.png")
    if corrupt:
        (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (root / ".hidden.png").write_bytes(b"ignored")
    return root


def manifest(out_dir: Path) -> dict[str, dict[str, str]]:
    with open(out_dir / "manifest.csv", newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle)}


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(["batch", *map(str, args), "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_corrupt_input_is_recorded_and_skipped_then_resume(tmp_path, tiny_bundle, capsys):
    photos, out = make_photos(tmp_path / "photos", 3, corrupt=True), tmp_path / "out"
    code, stdout, stderr = run_cli(capsys, photos, out, "--quality", "30", "--model", tiny_bundle)
    assert code == 1 and "1 failed" in stderr and stdout == ""
    rows = manifest(out)
    assert set(rows) == {"b/c/img0.png", "a/img1.png", "b/c/img2.png", "broken.jpg"}
    assert rows["broken.jpg"]["status"] == "error" and "damaged" in rows["broken.jpg"]["message"]
    for name in ("b/c/img0.png", "a/img1.png", "b/c/img2.png"):
        row = rows[name]
        stream = out / Path(name).with_suffix(".vcx")
        header = Stream.from_bytes(stream.read_bytes()).header
        assert row["status"] == "ok" and int(row["bytes"]) == stream.stat().st_size
        assert float(row["bpp"]) == pytest.approx(stream.stat().st_size * 8 / (header.width * header.height), abs=1e-6)
        assert float(row["seconds"]) > 0
    assert not list(out.rglob("*.part"))  # no temporaries left
    # Re-running resumes: finished outputs are skipped, the failure is retried (and fails again).
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.vcx")}
    code, _, _ = run_cli(capsys, photos, out, "--quality", "30", "--model", tiny_bundle)
    assert code == 1 and {p: p.stat().st_mtime_ns for p in out.rglob("*.vcx")} == before
    assert [r["status"] for r in manifest(out).values()].count("skipped") == 3
    (photos / "broken.jpg").unlink()
    assert run_cli(capsys, photos, out, "--quality", "30", "--model", tiny_bundle)[0] == 0


def test_never_overwrites_without_permission(tmp_path, tiny_bundle):
    photos, out = make_photos(tmp_path / "photos", 2), tmp_path / "out"
    (out / "a").mkdir(parents=True)
    precious = out / "a" / "img1.vcx"
    precious.write_bytes(b"user data")
    report = run_batch(photos, out, BatchSettings(model=str(tiny_bundle), quality=10))
    outcome = {o.file: o for o in report.outcomes}["a/img1.png"]
    assert outcome.status == "kept" and "not written by this batch" in outcome.message
    assert "--overwrite" in outcome.message and not report.complete
    assert precious.read_bytes() == b"user data"
    valid = (out / "b/c/img0.vcx").read_bytes()
    report = run_batch(photos, out, BatchSettings(model=str(tiny_bundle), quality=90), overwrite=True)
    assert report.failed == 0 and precious.read_bytes() != b"user data"
    assert (out / "b/c/img0.vcx").read_bytes() != valid  # re-coded at the new quality


def test_local_workers_give_the_same_bytes(tmp_path, tiny_bundle):
    photos = make_photos(tmp_path / "photos", 4)
    settings = BatchSettings(model=str(tiny_bundle), quality=50)
    run_batch(photos, tmp_path / "one", settings)
    report = run_batch(photos, tmp_path / "two", settings, workers=2)
    assert report.count("ok") == 4
    for stream in (tmp_path / "one").rglob("*.vcx"):
        assert stream.read_bytes() == (tmp_path / "two" / stream.relative_to(tmp_path / "one")).read_bytes()


def test_usage_errors_exit_2(tmp_path, tiny_bundle, capsys):
    code, _, err = run_cli(capsys, tmp_path / "missing", tmp_path / "out", "--model", tiny_bundle)
    assert code == 2 and "does not exist" in err
    photos = make_photos(tmp_path / "photos", 1)
    code, _, err = run_cli(capsys, photos, tmp_path / "out", "--task", "no-such-task", "--model", tiny_bundle)
    assert code == 2 and "unknown task 'no-such-task'" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, photos, tmp_path / "out", "--decode", "--bpp", "0.1", "--model", tiny_bundle)
    assert code == 2 and "--decode" in err
    code, _, err = run_cli(capsys, photos, tmp_path / "out", "--model", tmp_path / "nothing")
    assert code == 2 and "no model bundle" in err


def test_ray_engine_over_20_images(tmp_path, tiny_bundle, tiny_codec):
    ray = pytest.importorskip("ray")
    photos = make_photos(tmp_path / "photos", 20)
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             configure_logging=False)
    try:
        report = run_batch(photos, tmp_path / "out", BatchSettings(model=str(tiny_bundle), quality=40),
                           engine="ray", workers=2)
    finally:
        ray.shutdown()
    assert report.count("ok") == 20 and report.failed == 0
    assert len(manifest(tmp_path / "out")) == 20
    for name in ("a/img1", "b/c/img4"):  # the same bytes as coding here
        assert (tmp_path / "out" / f"{name}.vcx").read_bytes() == tiny_codec.encode(photos / f"{name}.png",
                                                                                       quality=40).data


def test_resume_is_keyed_on_settings_and_input_content(tmp_path, tiny_bundle):
    photos, out = make_photos(tmp_path / "photos", 2), tmp_path / "out"
    settings = BatchSettings(model=str(tiny_bundle), quality=60)
    assert run_batch(photos, out, settings).count("ok") == 2
    streams = {p: p.read_bytes() for p in out.rglob("*.vcx")}
    lower = run_batch(photos, out, BatchSettings(model=str(tiny_bundle), quality=20))  # other settings: not done
    # The manifest tells what is on disk (the first run's good streams, their sizes) and why it was kept.
    assert lower.count("kept") == 2 and lower.failed == 0 and not lower.complete
    for outcome in lower.outcomes:
        assert "made by an earlier batch with other settings" in outcome.message
        assert outcome.bytes == len(streams[out / Path(outcome.file).with_suffix(".vcx")])
    assert {row["status"] for row in manifest(out).values()} == {"kept"}
    assert all(row["bytes"] and row["bpp"] for row in manifest(out).values())
    assert {p: p.read_bytes() for p in out.rglob("*.vcx")} == streams  # and nothing replaced
    natural_image(48, 40, seed=99).save(photos / "a" / "img1.png")  # a changed input is not done either
    statuses = {o.file: o.status for o in run_batch(photos, out, settings).outcomes}
    assert statuses == {"a/img1.png": "kept", "b/c/img0.png": "skipped"}
    report = run_batch(photos, out, BatchSettings(model=str(tiny_bundle), quality=20), overwrite=True)
    assert report.count("ok") == 2
    assert run_batch(photos, out, BatchSettings(model=str(tiny_bundle), quality=20)).count("skipped") == 2
    (out / "a" / "img1.vcx").write_bytes(streams[out / "a" / "img1.vcx"])  # a file the batch did not write
    assert {o.file: o.status for o in run_batch(photos, out, BatchSettings(model=str(tiny_bundle), quality=20))
            .outcomes}["a/img1.png"] == "kept"


def test_inputs_that_differ_only_in_extension_get_their_own_outputs(tmp_path, tiny_bundle):
    photos = tmp_path / "photos"
    photos.mkdir()
    natural_image(48, 40, seed=1).save(photos / "a.png")
    natural_image(48, 40, seed=2).save(photos / "a.jpg")
    natural_image(48, 40, seed=3).save(photos / "b.png")
    report = run_batch(photos, tmp_path / "out", BatchSettings(model=str(tiny_bundle), quality=30))
    assert report.count("ok") == 3
    assert sorted(p.name for p in (tmp_path / "out").glob("*.vcx")) == ["a.jpg.vcx", "a.png.vcx", "b.vcx"]


@pytest.mark.parametrize("options", [["--bpp", "-1"], ["--quality", "500"], ["--bpp", "1e305"],
                                     ["--workers", "0"]])
def test_bad_settings_are_one_line_exit_2_and_nothing_runs(tmp_path, tiny_bundle, capsys, options):
    photos, out = make_photos(tmp_path / "photos", 2), tmp_path / "out"
    code, _, stderr = run_cli(capsys, photos, out, *options, "--model", tiny_bundle)
    assert code == 2 and stderr.startswith("versacodec: error:") and stderr.count("\n") == 1
    assert not out.exists()


SLOW_BATCH = """
import sys, time
from versacodec.codec import Codec
from versacodec.interfaces.cli import main
original = Codec.encode
def slow(self, *args, **kwargs):
    print("coding", flush=True)
    time.sleep(60)
    return original(self, *args, **kwargs)
Codec.encode = slow
sys.exit(main(["batch", *sys.argv[1:3], "--model", sys.argv[3], "--quality", "30", "--no-progress"]))
"""


def test_sigterm_writes_the_manifest(tmp_path, tiny_bundle):
    import signal
    import subprocess
    import sys

    photos, out = make_photos(tmp_path / "photos", 2), tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-c", SLOW_BATCH, str(photos), str(out), str(tiny_bundle)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "coding\n"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert (out / "manifest.csv").read_text().startswith("file,bytes")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


WORKER_DRIVER = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from versacodec.interfaces.batch import _init_worker
parent = os.getpid() if sys.argv[1] == "watched" else None
pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(1, parent))
print(pool.submit(os.getpid).result(), flush=True)
pool.submit(time.sleep, 600)
time.sleep(600)
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
@pytest.mark.parametrize("watched", [True, False])
def test_workers_exit_when_the_driver_is_killed(watched):
    import os
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen([sys.executable, "-c", WORKER_DRIVER, "watched" if watched else "unwatched"],
                               stdout=subprocess.PIPE, text=True)
    worker = int(process.stdout.readline())
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + (30 if watched else 3)
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    if watched:
        assert not _alive(worker)
    else:  # the control: without the watch the orphan lives on (the bug this guards against)
        assert _alive(worker)
        os.kill(worker, signal.SIGKILL)


def test_an_output_folder_that_cannot_be_written_is_one_line_before_any_work(tmp_path, tiny_bundle, capsys):
    """Issue #37: a traceback (exit 1) before; now a usage error naming the folder, nothing coded."""
    photos = make_photos(tmp_path / "photos", 2)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = run_cli(capsys, photos, blocker / "out", "--quality", "30", "--model", tiny_bundle)
    assert code == 2 and err.startswith("versacodec: error: cannot write to the output folder")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_manifest_that_cannot_be_written_at_the_end_is_one_line(tmp_path, tiny_bundle, capsys, monkeypatch):
    """The folder may become unwritable while the batch runs (here: the manifest's write fails)."""
    import versacodec.interfaces.batch as batch

    def refuse(path, data, **_):
        raise PermissionError(13, "Permission denied", str(path))

    photos = make_photos(tmp_path / "photos", 2)
    monkeypatch.setattr(batch, "atomic_write_bytes", refuse)
    code, _, err = run_cli(capsys, photos, tmp_path / "out", "--quality", "30", "--model", tiny_bundle)
    assert code == 2 and "cannot write the manifest" in err and "Permission denied" in err
    assert err.count("\n") == 1 and "Traceback" not in err
