"""Analysis/synthesis transforms between the autoencoder latent and the coded latent y, and the
hyperprior transforms between y and the side information z.

Strides: latent → y halves the resolution, y → z quarters it, so an image is padded to a
multiple of 8 (autoencoder) × 2 × 4 = 64 pixels. The hyper-synthesis feeds the entropy coder
and is therefore built from exact fixed-point layers (see entropy.fixed_point).
"""

from __future__ import annotations

import torch
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


class LinearPath(nn.Module):
    """A transform between the latent and y plus a linear map between the same grids (space-to-depth
    then a 1×1 convolution, or its mirror), started as an orthonormal projection and its transpose,
    with the transform's last layer at zero, so the pair starts as the identity.

    TAEF2's latents carry little redundancy (32 channels at f = 8), and the residual convolutions
    alone learn the near-identity that the upper rates need slowly: with no quantisation, from
    scratch, their round trip's latent MSE was 0.59 after 100 steps and 0.48 after 200 (unit-variance
    latents), against 0.31 and 0.18 with a (randomly started) linear path. Codecs trained without
    one stalled at a latent MSE near 0.6 at any rate (docs/experiments/2026-12-07-v5-taef2.md)."""

    def __init__(self, transform: nn.Sequential, projection: torch.Tensor, analysis: bool) -> None:
        super().__init__()
        self.transform = transform
        wide, narrow = projection.shape  # (y_channels, latent_channels · stride²), orthonormal columns
        if analysis:
            self.linear = nn.Sequential(nn.PixelUnshuffle(LATENT_TO_Y_STRIDE), nn.Conv2d(narrow, wide, 1, bias=False))
            self.linear[1].weight.data.copy_(projection.view(wide, narrow, 1, 1))
        else:
            self.linear = nn.Sequential(nn.Conv2d(wide, narrow, 1, bias=False), nn.PixelShuffle(LATENT_TO_Y_STRIDE))
            self.linear[0].weight.data.copy_(projection.t().reshape(narrow, wide, 1, 1))
        nn.init.zeros_(transform[-1].weight)
        nn.init.zeros_(transform[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transform(x) + self.linear(x)


def linear_paths(analysis: nn.Sequential, synthesis: nn.Sequential, latent_channels: int,
                 y_channels: int) -> tuple[LinearPath, LinearPath]:
    """Both transforms with their linear paths, sharing one random orthonormal projection."""
    narrow = latent_channels * LATENT_TO_Y_STRIDE**2
    if y_channels < narrow:
        raise ValueError(f"a linear path needs y_channels >= {narrow} (latent channels x {LATENT_TO_Y_STRIDE ** 2})")
    generator = torch.Generator().manual_seed(0)  # the same start for every codec of a config
    projection, _ = torch.linalg.qr(torch.randn(y_channels, narrow, generator=generator))
    return LinearPath(analysis, projection, analysis=True), LinearPath(synthesis, projection, analysis=False)


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
