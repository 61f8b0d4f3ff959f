"""A Stable-Diffusion-style VAE (diffusers `AutoencoderKL`) as an optional external latent space.

The user points at a local folder they own, either a whole diffusers pipeline folder (its `vae/`
is used) or a VAE folder itself; nothing is downloaded. Latents are the posterior mean, so
encoding is deterministic, scaled as the diffusion model that owns the VAE expects:
(z - shift_factor) * scaling_factor, both from the VAE config. That scaling is what brings the
VAE's latents to roughly unit variance, which is the normalisation the LatentSpace Protocol asks for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Self

import torch
from diffusers import AutoencoderKL
from torch import nn

from versacodec.errors import InputError, ModelError
from versacodec.fileio import CONFIG_NAME
from versacodec.modeling import freeze

VAE_CLASS = "AutoencoderKL"


def _vae_location(folder: Path) -> tuple[Path, str | None]:
    """(folder, subfolder) for diffusers; ModelError when the folder holds no AutoencoderKL config."""
    if not folder.is_dir():
        raise ModelError(f"Stable Diffusion VAE folder {folder} does not exist")
    for subfolder in ("vae", None):
        config_path = folder / subfolder / CONFIG_NAME if subfolder else folder / CONFIG_NAME
        if not config_path.is_file():
            continue
        try:
            class_name = json.loads(config_path.read_text()).get("_class_name")
        except (OSError, ValueError, AttributeError) as exc:
            raise ModelError(f"{config_path}: unreadable config ({exc})") from exc
        if class_name != VAE_CLASS:
            raise ModelError(f"{config_path} describes a {class_name!r} model, not a diffusers {VAE_CLASS}")
        return folder, subfolder
    raise ModelError(f"{folder} is not a diffusers VAE folder: neither {CONFIG_NAME} nor vae/{CONFIG_NAME} found")


class StableDiffusionVAE(nn.Module):
    """Image in [0, 1] <-> scaled posterior-mean latent of a diffusers AutoencoderKL."""

    name = "sd-vae"

    def __init__(self, vae: AutoencoderKL) -> None:
        super().__init__()
        self.vae = vae
        self.scaling_factor = float(vae.config.scaling_factor)
        # SD 1.x/2.x and SDXL VAEs have no shift; SD3/FLUX-style configs carry one (possibly null).
        self.shift_factor = float(getattr(vae.config, "shift_factor", None) or 0.0)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> Self:
        root, subfolder = _vae_location(Path(folder))
        try:
            vae = AutoencoderKL.from_pretrained(root, subfolder=subfolder, local_files_only=True)
        except (OSError, ValueError, RuntimeError) as exc:  # missing/damaged weights, config/shape mismatch
            raise ModelError(f"cannot load the {VAE_CLASS} in {root / (subfolder or '')}: {exc}") from exc
        return freeze(cls(vae))

    @property
    def factor(self) -> int:
        # One 2x downsampling between consecutive encoder stages, as diffusers' pipelines assume.
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def channels(self) -> int:
        return int(self.vae.config.latent_channels)

    @property
    def peak_channels_per_pixel(self) -> float:
        return float(self.vae.config.block_out_channels[0])  # its outer blocks run at full resolution

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        if height % self.factor or width % self.factor:
            raise InputError(f"this VAE needs sides divisible by {self.factor}, got {width}x{height}")
        latents = self.vae.encode(images * 2 - 1).latent_dist.mean
        return (latents - self.shift_factor) * self.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        images = self.vae.decode(latents / self.scaling_factor + self.shift_factor).sample
        return (images * 0.5 + 0.5).clamp(0, 1)
