"""Pick a latent space from a short text spec (command-line options, training configs).

    versacodec:<folder>   versacodec's own autoencoder: its folder, or a model bundle's latent space
    taef2                 TAEF2 (FLUX.2 latent space) from the model directory
    sd-vae:<folder>       a diffusers AutoencoderKL: a Stable Diffusion pipeline folder or a VAE folder
"""

from __future__ import annotations

from pathlib import Path

from versacodec.bundle import BUNDLE_FILE, read_manifest
from versacodec.errors import InputError
from versacodec.latent_space.base import LatentSpace
from versacodec.registry import Registry

LATENT_SPACES: Registry[type] = Registry("latent space", {
    "versacodec": "versacodec.latent_space.autoencoder:Autoencoder",
    "taef2": "versacodec.latent_space.taef2:TAEF2",
    # Imported on demand like the others: it pulls in diffusers, which takes seconds to import.
    "sd-vae": "versacodec.latent_space.sd_vae:StableDiffusionVAE",
})
SPECS = ("versacodec:<folder>", "taef2", "sd-vae:<folder>")


def load_latent_space(spec: str) -> LatentSpace:
    kind, _, argument = spec.partition(":")
    if (f"{kind}:<folder>" if argument else kind) not in SPECS:
        raise InputError(f"unknown latent space {spec!r}; options: {', '.join(SPECS)}")
    if not argument:
        return LATENT_SPACES[kind].from_pretrained()
    folder = Path(argument).expanduser()
    if kind == "versacodec" and (folder / BUNDLE_FILE).is_file():
        return read_manifest(folder).load(folder, "autoencoder")
    return LATENT_SPACES[kind].from_pretrained(folder)
