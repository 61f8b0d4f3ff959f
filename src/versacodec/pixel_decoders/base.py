"""What every pixel decoder is: a module on top of versacodec's own autoencoder decoder.

A pixel decoder runs the first layers of the autoencoder's decoder as they are and replaces the
rest, so it fits only the autoencoder architecture it was trained on; its config records that
architecture (`autoencoder`). Another latent space (TAEF2, a diffusers VAE) has no such decoder
layers: a bundle that pairs one with a pixel decoder is refused with a ModelError.
"""

from __future__ import annotations

import torch

from versacodec.errors import ModelError
from versacodec.latent_space.autoencoder import Autoencoder
from versacodec.latent_space.base import LatentSpace
from versacodec.modeling import PretrainedModule


class PixelDecoder(PretrainedModule):
    """`forward(autoencoder, latents)`: normalised latents → image in [0, 1], unclamped (training);
    `decode` clamps it. Subclasses give a config with an `autoencoder` field and `forward`."""

    def check_fits(self, latent_space: LatentSpace) -> None:
        if not isinstance(latent_space, Autoencoder):
            raise ModelError(f"a {type(self).__name__} decodes versacodec's autoencoder latents, not "
                             f"{getattr(latent_space, 'name', type(latent_space).__name__)}'s")
        if latent_space.config != self.config.autoencoder:
            raise ModelError("the pixel decoder was trained for a different autoencoder architecture")

    def forward(self, autoencoder: Autoencoder, latents: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, autoencoder: Autoencoder, latents: torch.Tensor) -> torch.Tensor:
        return self(autoencoder, latents).clamp(0, 1)
