"""Write TAEF2 as a versacodec component: the upstream fp16 weights in the project's own format.

Reads `taef2_encoder.pth` and `taef2_decoder.pth` (madebyollin/taesd @ 5cccb12, MIT) from the model
directory (`$VERSACODEC_MODELS`, by default ../shared/models, under `latent/`) and writes a folder
that a bundle takes as its `autoencoder/` component and `TAEF2.from_pretrained` reads:

    config.json        the class name and the weights' source
    model.safetensors  every tensor in float16, as shipped (the upstream weights are fp16 already;
                       the latent statistics are rounded to fp16 here once, so training caches and
                       the shipped model normalise latents identically)
    LICENSE            the upstream MIT licence, which must travel with the weights

    .venv/bin/python scripts/convert_taef2.py runs/taef2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from versacodec.fileio import WEIGHTS_NAME
from versacodec.latent_space.taef2 import TAEF2

# The LICENSE file of madebyollin/taesd at 5cccb12, verbatim.
UPSTREAM_LICENSE = """MIT License

Copyright (c) 2023 Ollin Boer Bohan

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def convert(output: Path) -> None:
    model = TAEF2.from_files()
    model.save_pretrained(output)
    weights = output / WEIGHTS_NAME
    tensors = {name: tensor.half() if tensor.is_floating_point() else tensor
               for name, tensor in load_file(str(weights)).items()}
    save_file(tensors, str(weights))
    (output / "LICENSE").write_text(UPSTREAM_LICENSE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path, help="the component folder to write (must not exist)")
    args = parser.parse_args()
    if args.output.exists():
        sys.exit(f"error: {args.output} exists; remove it or choose another folder")
    convert(args.output)
    reloaded = TAEF2.from_pretrained(args.output)
    with torch.no_grad():
        probe = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        drift = (reloaded.encode(probe) - TAEF2.from_files().encode(probe)).abs().max().item()
    print(f"wrote {args.output}; latent drift from the upstream files on a probe: {drift:.2e}")


if __name__ == "__main__":
    main()
