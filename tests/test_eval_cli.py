import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import natural_image
from versacodec.evaluation.rate_search import SettingCodec
from versacodec.interfaces.cli import main


@pytest.fixture
def folder(tmp_path):
    images = tmp_path / "photos"
    images.mkdir()
    for seed in range(2):
        natural_image(96, 80, seed=seed).save(images / f"img{seed}.png")
    return images


def run(capsys, *args):
    code = main(["eval", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_eval_on_a_folder_writes_json_markdown_plots_and_resumes(folder, tmp_path, tiny_bundle, capsys,
                                                                 monkeypatch):
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["--dataset", folder, "--codecs", "jpeg,webp,versacodec-direct", "--model", tiny_bundle,
            "--bpp", "1.0,2.0", "--metrics", "psnr", "--anchor", "jpeg", "--out", out, "--cache-dir", cache,
            "--no-progress"]
    code, stdout, stderr = run(capsys, *args, "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)["photos"]
    assert set(summary) == {"jpeg", "webp", "versacodec-direct", "reference"}
    for results in (summary[c] for c in ("jpeg", "webp", "versacodec-direct")):
        assert results["target_bpp"] == [1.0, 2.0] and results["images"] == [2, 2]
        assert all(b <= t for b, t in zip(results["bpp"], results["target_bpp"], strict=True))

    run_json = json.loads((out / "results.json").read_text())
    assert run_json["command"].startswith("versacodec eval --dataset")
    assert run_json["environment"]["packages"]["Pillow"] and "jpeg" in run_json["environment"]["codecs"]
    photos = run_json["datasets"]["photos"]
    assert len(photos["codecs"]["webp"]["per_image"]) == 4
    assert set(photos["bd"]["metrics"]["psnr"]) == {"webp", "versacodec-direct"}
    report = (out / "results.md").read_text()
    assert "### psnr (higher is better)" in report and "BD-rate against jpeg" in report
    assert (out / "plots" / "photos-psnr.png").stat().st_size > 1000

    def refuse(*_):
        raise AssertionError("a finished result was recomputed")

    monkeypatch.setattr(SettingCodec, "encode_setting", refuse)
    code, stdout, stderr = run(capsys, *args)
    assert code == 0, stderr
    assert "wrote" in stdout


def test_user_errors_are_one_line_exit_2(folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VERSACODEC_DATA", str(tmp_path / "empty"))
    code, _, stderr = run(capsys, "--dataset", "kodak", "--codecs", "jpeg", "--out", tmp_path / "o",
                          "--cache-dir", tmp_path / "c")
    assert code == 2 and "kodak" in stderr and "not available" in stderr and stderr.count("\n") == 1
    code, _, stderr = run(capsys, "--dataset", folder, "--bpp", "fast")
    assert code == 2 and "--bpp" in stderr
    code, _, stderr = run(capsys, "--dataset", folder, "--codecs", "bpg")
    assert code == 2 and "unknown codec" in stderr
    code, _, stderr = run(capsys, "--preset", "report", "--dataset", folder)
    assert code == 2 and "--dataset" in stderr


def test_missing_pieces_are_skipped_with_a_note(folder, tmp_path, capsys):
    code, _, stderr = run(capsys, "--dataset", f"{folder},{tmp_path / 'missing'}", "--codecs",
                          "jpeg,versacodec-direct", "--model", tmp_path / "no-model", "--bpp", "1",
                          "--metrics", "psnr", "--tasks", "detection", "--out", tmp_path / "o",
                          "--cache-dir", tmp_path / "c", "--no-progress")
    assert code == 2 and "neither a known name" in stderr
    code, _, stderr = run(capsys, "--dataset", folder, "--codecs", "jpeg,versacodec-direct", "--model",
                          tmp_path / "no-model", "--bpp", "1", "--metrics", "psnr", "--tasks", "detection",
                          "--out", tmp_path / "o", "--cache-dir", tmp_path / "c", "--no-progress")
    assert code == 0
    assert "skipped codec versacodec-direct" in stderr and "skipped task detection" in stderr


def test_help_teaches_with_examples(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "--preset report" in text and "versacodec-generative:steps=4" in text


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads process states from /proc")
def test_a_pool_worker_ends_when_the_eval_process_is_killed(tmp_path):
    ready = tmp_path / "watching"
    child_code = ("from versacodec.evaluation.runner import exit_with_parent; exit_with_parent(0.05); "
                  f"import pathlib, time; pathlib.Path({str(ready)!r}).touch(); time.sleep(60)")
    parent_code = ("import subprocess, sys, time; "
                   f"child = subprocess.Popen([sys.executable, '-c', {child_code!r}]); "
                   "print(child.pid, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    parent.kill()
    parent.wait()

    def running() -> bool:
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except FileNotFoundError:
            return False
        return "State:\tZ" not in status

    deadline = time.monotonic() + 20
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running()
