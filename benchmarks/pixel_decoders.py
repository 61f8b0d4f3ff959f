"""Compare pixel decoders on the same latents: Kodak coded once by a bundle, decoded to the latent
a path hands its pixel decoder (the one-step generative latent, or ẑ for the direct path), then
rendered by each candidate. PSNR, LPIPS, DISTS and the periodic-artifact ratio of the 8-bit
result against the original, per rate; seconds per image for the rendering alone.

Candidates: `autoencoder` (the autoencoder's own decoder), `bundle` (the path's pixel decoder in
the bundle), or folders of `pixel_decoder` runs (final/ or snapshot-N/).

    .venv/bin/python benchmarks/pixel_decoders.py --path generative --bpp 0.05,0.1 --images 6 \
        bundle runs/pixel_decoder_restoration/snapshot-400 [--model DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from versacodec.codec import Codec
from versacodec.determinism import reproducible_inference
from versacodec.imaging import open_image
from versacodec.metrics.dists import DISTS
from versacodec.metrics.lpips import LPIPS
from versacodec.metrics.periodic import periodic_ratio
from versacodec.metrics.quality import psnr
from versacodec.options import DecodeOptions
from versacodec.paths import data_dir
from versacodec.pixel_decoders import load_pixel_decoder


def renderer(codec: Codec, path: str, candidate: str):
    if candidate == "autoencoder":
        return codec.model.latent_space.decode
    decoder = codec.model.pixel_decoders[path] if candidate == "bundle" else load_pixel_decoder(Path(candidate))
    if decoder is None:
        return codec.model.latent_space.decode
    decoder.check_fits(codec.model.latent_space)
    return lambda latents: decoder.decode(codec.model.latent_space, latents)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidates", nargs="+", help="autoencoder, bundle, or pixel decoder folders")
    parser.add_argument("--path", choices=("direct", "generative"), default="generative")
    parser.add_argument("--bpp", default="0.05,0.1")
    parser.add_argument("--images", type=int, default=6, help="first N Kodak images")
    parser.add_argument("--model", default=None)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    root = data_dir()
    if root is None or not (root / "kodak").is_dir():
        raise SystemExit("error: Kodak not found; set VERSACODEC_DATA")
    codec = Codec.from_pretrained(args.model)
    renderers = {candidate: renderer(codec, args.path, candidate) for candidate in args.candidates}
    lpips, dists = LPIPS("alex"), DISTS()
    files = sorted((root / "kodak").glob("*.png"))[: args.images]
    results: dict = {}
    for bpp in (float(v) for v in args.bpp.split(",")):
        scores = {c: {"psnr": [], "lpips": [], "dists": [], "periodic": [], "seconds": []} for c in renderers}
        for file in files:
            original = open_image(file, codec.model.max_pixels).pixels
            encoded = codec.encode(file, bpp=bpp)
            with reproducible_inference(), torch.no_grad():
                latent = codec.output_latent(codec.read(encoded.data), DecodeOptions(args.path))
                for candidate, render in renderers.items():
                    started = time.perf_counter()
                    pixels = render(latent)[..., : original.shape[-2], : original.shape[-1]]
                    seconds = time.perf_counter() - started
                    decoded = pixels.mul(255).round().div(255)
                    entry = scores[candidate]
                    entry["psnr"].append(float(psnr(decoded, original)))
                    entry["lpips"].append(float(lpips(decoded, original)))
                    entry["dists"].append(float(dists(decoded, original)))
                    entry["periodic"].append(periodic_ratio(original, decoded))
                    entry["seconds"].append(seconds)
        results[f"{bpp:g}"] = {c: {k: statistics.mean(v) for k, v in s.items()} for c, s in scores.items()}
        for candidate, means in results[f"{bpp:g}"].items():
            print(f"{bpp:g} bpp {candidate:<48} " + "  ".join(f"{k} {v:.4f}" for k, v in means.items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"path": args.path, "images": [f.name for f in files], "results": results},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
