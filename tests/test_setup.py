"""scripts/setup-venv.sh installs the CPU build of torch: it asks pip which build plain
`pip install torch==2.13.0` would take (scripts/torch_build.py reads pip's report) and takes the
CPU index where that is a CUDA build."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _torch_build():
    spec = importlib.util.spec_from_file_location("torch_build", REPO / "scripts" / "torch_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.torch_build


def _report(version: str, url: str, requires: list[str]) -> dict:
    return {"install": [{"metadata": {"name": "torch", "version": version, "requires_dist": requires},
                         "download_info": {"url": url}}]}


def test_a_cuda_build_is_told_from_its_nvidia_requirements():
    torch_build = _torch_build()
    cuda = _report("2.13.0", "https://files.example/torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl",
                   ["filelock", "nvidia-cublas-cu12==12.8.4.1; platform_system == 'Linux'", "triton==3.5.0"])
    assert torch_build(cuda) == ("cuda", "torch 2.13.0 from https://files.example/torch-2.13.0-cp311-cp311-"
                                         "manylinux_2_28_x86_64.whl")
    local_cpu = _report("2.13.0+cpu", "file:///opt/wheels/torch-2.13.0%2Bcpu-cp311.whl", ["filelock", "sympy"])
    assert torch_build(local_cpu)[0] == "cpu"


def test_the_build_pip_finds_here_is_reported(tmp_path):
    """The script's own question to pip, asked here."""
    report = tmp_path / "report.json"
    try:
        dry_run = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
                                  "--no-deps", "-q", "--report", str(report), "torch==2.13.0"], capture_output=True,
                                 timeout=120)
    except subprocess.TimeoutExpired:
        pytest.skip("pip's index does not answer here")
    if dry_run.returncode != 0:
        pytest.skip(f"pip finds no torch==2.13.0 here: {dry_run.stderr.decode()[-200:]}")
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "torch_build.py"), str(report)],
                            capture_output=True, text=True, check=True, timeout=60)
    build, chosen = result.stdout.split(" ", 1)
    assert build in ("cpu", "cuda") and chosen.startswith("torch 2.13.0")
    assert json.loads(report.read_text())["install"][0]["metadata"]["name"] == "torch"


def test_make_test_runs_the_web_tests_even_when_the_suite_fails(tmp_path):
    """A stand-in python that fails the first pytest run and passes the second: both must run,
    both results are reported, and make fails."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    log = tmp_path / "runs.log"
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\necho "$@" >> {log}\ncase "$*" in *--ignore*) exit 1;; esac\nexit 0\n')
    python.chmod(0o755)
    (venv / ".setup-done").touch()  # newer than the dependency files: no set-up
    run = subprocess.run(["make", "-s", "-C", str(REPO), "test", f"VENV={venv}"], capture_output=True, text=True,
                         timeout=60)
    runs = log.read_text().splitlines()
    assert len(runs) == 2 and runs[1].endswith("tests/test_web_server.py")
    assert "suite exit 1, web-server tests exit 0" in run.stdout
    assert run.returncode != 0
