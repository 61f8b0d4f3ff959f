"""Write v4's direct pixel decoder: the autoencoder's own decoder tail, unchanged, behind the fixed
grid notch (`versacodec.pixel_decoders.grid_notch`). Nothing is trained: the notch is a fixed
filter, and on Kodak it takes the autoencoder decoder's periodic-artifact ratio from ~310 to ~1
for 0.06-0.17 dB, where the tails fine-tuned around it either lost up to 1 dB at 0.2 bpp
(`configs/direct_decoder*.yaml`) or gave back some of the pattern for 0.01 LPIPS
(`configs/ablation/direct_decoder_fidelity.yaml`); docs/experiments/2026-12-03-v4-pixel-decoders.md.

    .venv/bin/python scripts/notched_direct_decoder.py -o runs/direct_decoder_notched [--model DIR]
    versacodec bundle ... --direct-decoder runs/direct_decoder_notched
"""

from __future__ import annotations

import argparse
from pathlib import Path

from versacodec.codec import Codec
from versacodec.pixel_decoders.tail import DecoderTail

FIRST_LAYER = 6  # the tail the other direct decoders train; any layer gives the same pixels here


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, required=True, help="new folder for the pixel decoder")
    parser.add_argument("--model", default=None, help="bundle whose autoencoder it wraps (default: the shipped one)")
    args = parser.parse_args()
    if args.output.exists():
        raise SystemExit(f"error: {args.output} exists; choose a new folder")
    codec = Codec.from_pretrained(args.model)
    DecoderTail.from_autoencoder(codec.model.latent_space, FIRST_LAYER, grid_notch=True).save_pretrained(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
