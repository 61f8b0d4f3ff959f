"""Pick a latent space from a short text spec (command-line options, training configs).

    versacodec:<folder>   versacodec's own autoencoder: a model bundle or its autoencoder/ folder
    taef2                 TAEF2 (FLUX.2 latent space) from the model directory
    sd-vae:<folder>       a diffusers AutoencoderKL: a Stable Diffusion pipeline folder or a VAE folder
"""

from __future__ import annotations

from pathlib import Path

from versacodec.bundle import BUNDLE_FILE, read_manifest
from versacodec.errors import InputError
from versacodec.latent_space.autoencoder import Autoencoder
from versacodec.latent_space.base import LatentSpace
from versacodec.latent_space.taef2 import TAEF2

SPECS = ("versacodec:<folder>", "taef2", "sd-vae:<folder>")


def load_latent_space(spec: str) -> LatentSpace:
    kind, _, argument = spec.partition(":")
    if kind == "taef2" and not argument:
        return TAEF2.from_files()
    if kind in ("versacodec", "sd-vae") and argument:
        folder = Path(argument).expanduser()
        if kind == "sd-vae":
            # Imported on demand: it pulls in diffusers, which takes seconds to import.
            from versacodec.latent_space.sd_vae import StableDiffusionVAE

            return StableDiffusionVAE.from_pretrained(folder)
        if (folder / BUNDLE_FILE).is_file():
            folder = read_manifest(folder).path(folder, "autoencoder")
        return Autoencoder.from_pretrained(folder)
    raise InputError(f"unknown latent space {spec!r}; options: {', '.join(SPECS)}")

