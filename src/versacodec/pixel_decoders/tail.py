"""The generative decoder's own pixel decoder: the autoencoder decoder with its upsampling tail
fine-tuned (perceptual losses) on the latents the prior generates from compressed streams.

The autoencoder decoder was trained on clean latents z for fidelity; the generative path hands it
ẑ after one denoising step, which is smoother than any z, and its MSE-trained upsampling turns
that into blur. This tail learns to render those latents with texture. Only the layers from
`first_layer` on are stored (the head stays the autoencoder's), which keeps the bundle small; the
direct decoder is untouched. Folder `generative/pixel_decoder/` (optional: without it the
generative path decodes pixels with the autoencoder).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from versacodec.errors import ModelError
from versacodec.latent_space.autoencoder import Autoencoder, AutoencoderConfig, Decoder
from versacodec.modeling import PretrainedModule

FOLDER = "pixel_decoder"


@dataclass(frozen=True)
class PixelDecoderConfig:
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    first_layer: int = 6  # index into the autoencoder decoder's layers where this tail begins

    def __post_init__(self) -> None:
        layers = len(Decoder(self.autoencoder))
        if not 0 <= self.first_layer < layers:
            raise ModelError(f"first_layer must lie in [0, {layers}), not {self.first_layer}")


class PixelDecoder(PretrainedModule):
    """decode(autoencoder, latents) = tail(autoencoder.decoder[:first_layer](raw latents))."""

    config_class = PixelDecoderConfig

    def __init__(self, config: PixelDecoderConfig) -> None:
        super().__init__(config)
        self.tail = nn.Sequential(*list(Decoder(config.autoencoder))[config.first_layer:])

    @classmethod
    def from_autoencoder(cls, autoencoder: Autoencoder, first_layer: int) -> PixelDecoder:
        """A tail that starts as the autoencoder decoder's own layers (decodes identically)."""
        decoder = cls(PixelDecoderConfig(autoencoder.config, first_layer))
        decoder.tail.load_state_dict(nn.Sequential(*list(autoencoder.decoder)[first_layer:]).state_dict())
        return decoder

    def check_fits(self, autoencoder: Autoencoder) -> None:
        if self.config.autoencoder != autoencoder.config:
            raise ModelError("the generative pixel decoder was trained for a different autoencoder architecture")

    def forward(self, autoencoder: Autoencoder, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents → image in [0, 1] (unclamped, for training)."""
        raw = latents * autoencoder.latent_std + autoencoder.latent_mean
        for layer in list(autoencoder.decoder)[: self.config.first_layer]:
            raw = layer(raw)
        return self.tail(raw) * 0.5 + 0.5

    def decode(self, autoencoder: Autoencoder, latents: torch.Tensor) -> torch.Tensor:
        return self(autoencoder, latents).clamp(0, 1)
