"""Analysis/synthesis transforms between the autoencoder latent and the coded latent y, and the
hyperprior transforms between y and the side information z.

Strides: latent → y halves the resolution, y → z quarters it, so an image is padded to a
multiple of 8 (autoencoder) × 2 × 4 = 64 pixels. The hyper-synthesis feeds the entropy coder
and is therefore built from exact fixed-point layers (see entropy.fixed_point).
"""

from __future__ import annotations

from torch import nn

from versacodec.blocks import residual_blocks
from versacodec.entropy.fixed_point import CodingConv2d, CodingConvTranspose2d

LATENT_TO_Y_STRIDE = 2
Y_TO_Z_STRIDE = 4


class Analysis(nn.Sequential):
    """Space-to-depth first, so every wide layer runs at y's resolution (cheap to train on a CPU)."""

    def __init__(self, latent_channels: int, width: int, y_channels: int, blocks: int) -> None:
        super().__init__(
            nn.PixelUnshuffle(LATENT_TO_Y_STRIDE),
            nn.Conv2d(latent_channels * LATENT_TO_Y_STRIDE**2, width, 3, padding=1),
            *residual_blocks(width, blocks),
            nn.SiLU(),
            nn.Conv2d(width, y_channels, 3, padding=1),
        )


class Synthesis(nn.Sequential):
    def __init__(self, y_channels: int, width: int, latent_channels: int, blocks: int) -> None:
        super().__init__(
            nn.Conv2d(y_channels, width, 3, padding=1),
            *residual_blocks(width, blocks),
            nn.SiLU(),
            nn.Conv2d(width, latent_channels * LATENT_TO_Y_STRIDE**2, 3, padding=1),
            nn.PixelShuffle(LATENT_TO_Y_STRIDE),
            nn.Conv2d(latent_channels, latent_channels, 3, padding=1),
        )


class HyperAnalysis(nn.Sequential):
    def __init__(self, y_channels: int, width: int, z_channels: int) -> None:
        super().__init__(
            nn.Conv2d(y_channels, width, 3, padding=1),
            nn.LeakyReLU(0.125),
            nn.Conv2d(width, width, 5, stride=2, padding=2),
            nn.LeakyReLU(0.125),
            nn.Conv2d(width, z_channels, 5, stride=2, padding=2),
        )


class HyperSynthesis(nn.Sequential):
    """ẑ → hyper features (M channels) at y's resolution; exact under exact_mode()."""

    def __init__(self, z_channels: int, width: int, y_channels: int) -> None:
        super().__init__(
            CodingConvTranspose2d(z_channels, width, 5, stride=2, padding=2, output_padding=1),
            nn.ReLU(),
            CodingConvTranspose2d(width, width, 5, stride=2, padding=2, output_padding=1),
            nn.ReLU(),
            CodingConv2d(width, y_channels, 3, padding=1),
        )
