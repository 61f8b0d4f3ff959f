"""Pick a latent space from a short text spec (command-line options, training configs).

    versacodec:<folder>   a latent space in versacodec's format: a component folder (its config
                          names the class: the own autoencoder, TAEF2), or a model bundle's
    taef2                 TAEF2 (FLUX.2 latent space) from the model directory
    sd-vae:<folder>       a diffusers AutoencoderKL: a Stable Diffusion pipeline folder or a VAE folder
"""

from __future__ import annotations

import json
from pathlib import Path

from versacodec.bundle import BUNDLE_FILE, COMPONENT_CLASSES, read_manifest
from versacodec.errors import InputError, ModelError
from versacodec.fileio import CONFIG_NAME
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
    if kind == "versacodec":
        return load_latent_space_folder(folder)
    return LATENT_SPACES[kind].from_pretrained(folder)


def load_latent_space_folder(folder: str | Path) -> LatentSpace:
    """A model bundle's latent space, or a component folder in versacodec's format whose config
    names its class (folders written before class names hold the own autoencoder)."""
    folder = Path(folder)
    if (folder / BUNDLE_FILE).is_file():
        return read_manifest(folder).load(folder, "autoencoder")
    try:
        class_name = json.loads((folder / CONFIG_NAME).read_text()).get("_class_name", "Autoencoder")
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelError(f"{folder} is not a latent space folder: {exc}") from exc
    space = COMPONENT_CLASSES[class_name].from_pretrained(folder)
    if not isinstance(space, LatentSpace):
        raise ModelError(f"{folder} holds a {class_name}, not a latent space")
    return space
