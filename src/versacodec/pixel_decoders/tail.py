"""A fine-tuned tail of the autoencoder decoder: the autoencoder decoder's layers up to
`first_layer` as they are, then its own copy of the remaining (upsampling) layers.

The autoencoder decoder was trained on clean latents z for fidelity; a decode path hands it
something else (ẑ from the latent codec, or ẑ after the generative prior), and the tail learns to
render that. Only the tail is stored, which keeps the bundle small; the autoencoder (and with it
the bitstream) is untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from versacodec.errors import ModelError
from versacodec.latent_space.autoencoder import Autoencoder, AutoencoderConfig, Decoder
from versacodec.modeling import PretrainedModule


@dataclass(frozen=True)
class DecoderTailConfig:
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    first_layer: int = 6  # index into the autoencoder decoder's layers where this tail begins

    def __post_init__(self) -> None:
        layers = len(Decoder(self.autoencoder))
        if not 0 <= self.first_layer < layers:
            raise ModelError(f"first_layer must lie in [0, {layers}), not {self.first_layer}")


class DecoderTail(PretrainedModule):
    """decode(autoencoder, latents) = tail(autoencoder.decoder[:first_layer](raw latents))."""

    config_class = DecoderTailConfig
    legacy_class_names = ("PixelDecoder",)  # v1–v3 bundles

    def __init__(self, config: DecoderTailConfig) -> None:
        super().__init__(config)
        self.tail = nn.Sequential(*list(Decoder(config.autoencoder))[config.first_layer:])

    @classmethod
    def from_autoencoder(cls, autoencoder: Autoencoder, first_layer: int) -> DecoderTail:
        """A tail that starts as the autoencoder decoder's own layers (decodes identically)."""
        decoder = cls(DecoderTailConfig(autoencoder.config, first_layer))
        decoder.tail.load_state_dict(nn.Sequential(*list(autoencoder.decoder)[first_layer:]).state_dict())
        return decoder

    def check_fits(self, autoencoder: Autoencoder) -> None:
        if self.config.autoencoder != autoencoder.config:
            raise ModelError("the pixel decoder was trained for a different autoencoder architecture")

    def forward(self, autoencoder: Autoencoder, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents → image in [0, 1] (unclamped, for training)."""
        raw = latents * autoencoder.latent_std + autoencoder.latent_mean
        for layer in list(autoencoder.decoder)[: self.config.first_layer]:
            raw = layer(raw)
        return self.tail(raw) * 0.5 + 0.5

    def decode(self, autoencoder: Autoencoder, latents: torch.Tensor) -> torch.Tensor:
        return self(autoencoder, latents).clamp(0, 1)
