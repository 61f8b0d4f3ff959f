"""A fine-tuned tail of the autoencoder decoder: the autoencoder decoder's layers up to
`first_layer` as they are, then its own copy of the remaining (upsampling) layers.

The autoencoder decoder was trained on clean latents z for fidelity; a decode path hands it
something else (ẑ from the latent codec, or ẑ after the generative prior), and the tail learns to
render that. Only the tail is stored, which keeps the bundle small; the autoencoder (and with it
the bitstream) is untouched.

Why `anti_alias`: each ×2 pixel shuffle computes the four pixels of a 2×2 cell with four
different kernels, so any difference between them (a bias, a gain) repeats with the cell: a
checkerboard at that stage's Nyquist frequency, 100–1000× above the spectrum around it on v3's
decodes of ẑ (a flat latent decodes to nothing but that pattern). A fixed binomial filter
[1, 2, 1]ᵀ[1, 2, 1]/16 after each shuffle has zeros at exactly those frequencies (the same remedy
as StyleGAN2's filtered upsampling), and every later layer is shift-equivariant, so the tail can
no longer draw the grid; fine-tuning recovers the sharpness the filter takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from versacodec.errors import ModelError
from versacodec.latent_space.autoencoder import Autoencoder, AutoencoderConfig, Decoder
from versacodec.pixel_decoders.base import PixelDecoder
from versacodec.pixel_decoders.grid_notch import GridNotch


@dataclass(frozen=True)
class DecoderTailConfig:
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    first_layer: int = 6  # index into the autoencoder decoder's layers where this tail begins
    anti_alias: bool = False  # a binomial filter after each pixel shuffle (see the module doc)
    grid_notch: bool = False  # a fixed notch at the latent grid's frequencies on the output (grid_notch.py)

    def __post_init__(self) -> None:
        layers = len(Decoder(self.autoencoder))
        if not 0 <= self.first_layer < layers:
            raise ModelError(f"first_layer must lie in [0, {layers}), not {self.first_layer}")


class BinomialFilter(nn.Module):
    """Fixed depthwise [1, 2, 1]ᵀ[1, 2, 1]/16 with replicated borders: zero response at Nyquist."""

    def __init__(self) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("kernel", (torch.outer(taps, taps) / 16)[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.kernel.to(x.dtype).expand(x.shape[1], 1, 3, 3)
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), weight, groups=x.shape[1])


def anti_aliased(layers: list[nn.Module]) -> list[nn.Module]:
    out: list[nn.Module] = []
    for layer in layers:
        out.append(layer)
        if isinstance(layer, nn.PixelShuffle):
            out.append(BinomialFilter())
    return out


class DecoderTail(PixelDecoder):
    """decode(autoencoder, latents) = tail(autoencoder.decoder[:first_layer](raw latents))."""

    config_class = DecoderTailConfig
    legacy_class_names = ("PixelDecoder",)  # v1–v3 bundles

    def __init__(self, config: DecoderTailConfig) -> None:
        super().__init__(config)
        layers = list(Decoder(config.autoencoder))[config.first_layer:]
        self.tail = nn.Sequential(*(anti_aliased(layers) if config.anti_alias else layers))
        # The filters take out each shuffle's own pattern; what perceptual training draws back at the
        # grid's other frequencies (and in colour), the notch takes out.
        self.notch = GridNotch(config.autoencoder.factor) if config.grid_notch else nn.Identity()

    @classmethod
    def from_autoencoder(cls, autoencoder: Autoencoder, first_layer: int, anti_alias: bool = False,
                         grid_notch: bool = False) -> DecoderTail:
        """A tail that starts with the autoencoder decoder's own weights (and decodes identically
        unless `anti_alias` or `grid_notch` add their filters)."""
        decoder = cls(DecoderTailConfig(autoencoder.config, first_layer, anti_alias, grid_notch))
        weighted = [layer for layer in decoder.tail if not isinstance(layer, BinomialFilter)]
        nn.Sequential(*weighted).load_state_dict(nn.Sequential(*list(autoencoder.decoder)[first_layer:]).state_dict())
        return decoder

    def forward(self, autoencoder: Autoencoder, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents → image in [0, 1] (unclamped, for training)."""
        raw = latents * autoencoder.latent_std + autoencoder.latent_mean
        for layer in list(autoencoder.decoder)[: self.config.first_layer]:
            raw = layer(raw)
        return self.notch(self.tail(raw)) * 0.5 + 0.5
