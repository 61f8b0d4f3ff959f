"""What every pixel decoder is: a module that renders one kind of latent space's latents.

Most run the first layers of versacodec's own autoencoder decoder as they are and replace the
rest, so they fit only the autoencoder architecture they were trained on; their config records
that architecture (`autoencoder`). `FineTunedTAEF2Decoder` renders TAEF2 latents instead. A bundle
that pairs a pixel decoder with a latent space it does not fit is refused with a ModelError.
"""

from __future__ import annotations

import torch

from versacodec.errors import ModelError
from versacodec.latent_space.autoencoder import Autoencoder
from versacodec.latent_space.base import LatentSpace
from versacodec.modeling import PretrainedModule


class PixelDecoder(PretrainedModule):
    """`forward(latent_space, latents)`: normalised latents → image in [0, 1], unclamped (training);
    `decode` clamps it. Subclasses give `forward` and a config; those on versacodec's autoencoder
    (the default `latent_space_type`) record its architecture in the config's `autoencoder` field."""

    latent_space_type: type = Autoencoder

    def check_fits(self, latent_space: LatentSpace) -> None:
        if not isinstance(latent_space, self.latent_space_type):
            raise ModelError(f"a {type(self).__name__} decodes {self.latent_space_type.__name__} latents, not "
                             f"{getattr(latent_space, 'name', type(latent_space).__name__)}'s")
        self.check_architecture(latent_space)

    def check_architecture(self, latent_space: LatentSpace) -> None:
        if latent_space.config != self.config.autoencoder:
            raise ModelError("the pixel decoder was trained for a different autoencoder architecture")

    def forward(self, latent_space: LatentSpace, latents: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, latent_space: LatentSpace, latents: torch.Tensor) -> torch.Tensor:
        return self(latent_space, latents).clamp(0, 1)
