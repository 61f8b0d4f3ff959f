"""TAEF2's decoder, fine-tuned to render the latent codec's ẑ (v5's generative decode).

TAEF2's decoder (`latent_space/taef2.py`) was distilled to render clean FLUX.2 latents. At
0.025–0.2 bpp the codec hands it something else: a latent that explains about half of each
channel's variance and lies off the manifold the decoder knows, which it renders as a screen-door
mesh. This pixel decoder is its own copy of the whole decoder, started from TAEF2's weights and
trained on pairs of image windows and the codec's ẑ of their latents (`training/coded_latent_pairs.py`)
with pixel, perceptual and adversarial terms. TAEF2 itself, its encoder and so the bitstream stay
as they are; the direct path keeps TAEF2's own decoder. `grid_notch` puts the fixed notch of
`grid_notch.py` on its output: LPIPS-alex and the discriminator reward a fine pattern locked to
the 8-px latent grid, which the notch removes without a loss term that costs the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import torch

from versacodec.latent_space.taef2 import FACTOR, TAEF2, Decoder, TAEF2Config
from versacodec.pixel_decoders.base import PixelDecoder
from versacodec.pixel_decoders.grid_notch import GridNotch


@dataclass(frozen=True)
class FineTunedTAEF2DecoderConfig:
    start: str = TAEF2Config().source  # the weights it started from
    grid_notch: bool = False  # a fixed notch at the 8-px latent grid's frequencies on the output


class FineTunedTAEF2Decoder(PixelDecoder):
    config_class = FineTunedTAEF2DecoderConfig
    latent_space_type = TAEF2

    def __init__(self, config: FineTunedTAEF2DecoderConfig | None = None) -> None:
        super().__init__(config or FineTunedTAEF2DecoderConfig())
        self.decoder = Decoder()
        self.notch = GridNotch(FACTOR) if self.config.grid_notch else torch.nn.Identity()

    @classmethod
    def from_latent_space(cls, latent_space: TAEF2, grid_notch: bool = False) -> Self:
        """A trainable copy of `latent_space`'s decoder: before training it decodes exactly as TAEF2
        does (without `grid_notch`)."""
        decoder = cls(FineTunedTAEF2DecoderConfig(latent_space.config.source, grid_notch))
        decoder.decoder.load_state_dict(latent_space.decoder.state_dict())
        return decoder

    def check_architecture(self, latent_space: TAEF2) -> None:
        """TAEF2's architecture is fixed: any TAEF2 latent space fits."""

    def forward(self, latent_space: TAEF2, latents: torch.Tensor) -> torch.Tensor:
        return self.notch(self.decoder(latents * latent_space.latent_std + latent_space.latent_mean))
