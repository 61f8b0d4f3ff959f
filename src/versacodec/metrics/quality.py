"""Pixel-fidelity metrics on RGB tensors in [0, 1], shape (N, 3, H, W); one value per image."""

from __future__ import annotations

import torch
from torch.nn import functional as F

# BT.601 luma and the two colour differences, as rows of a matrix applied to RGB.
YCBCR = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))
COLOUR_BLOCK = 16  # pixels per side of the local means that colour_shift compares


def psnr(x: torch.Tensor, y: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """PSNR in dB. Callers quantise to 8 bits first when they report a codec's result."""
    mse = (x - y).pow(2).flatten(1).mean(1).clamp_min(1e-12)
    return 10 * torch.log10(peak**2 / mse)


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MS-SSIM (pytorch-msssim) on [0, 1] images; images under 161 px per side use fewer scales."""
    from pytorch_msssim import ms_ssim as _ms_ssim

    smallest = min(x.shape[-2:])
    if smallest > 160:
        return _ms_ssim(x, y, data_range=1.0, size_average=False)
    # pytorch-msssim needs side > (win - 1) * 2**4; fewer scales keep small crops measurable.
    levels = max(1, min(5, int(torch.log2(torch.tensor(smallest / 10.0)).item())))
    weights = torch.tensor([0.0448, 0.2856, 0.3001, 0.2363, 0.1333][:levels])
    return _ms_ssim(x, y, data_range=1.0, size_average=False, weights=(weights / weights.sum()).tolist())


def block_means(images: torch.Tensor, block: int) -> torch.Tensor:
    """(N, C, H, W) → the means of its `block`-pixel squares; a partial edge block is the mean of
    its own pixels. What a person reads as colour and shading over regions, without the texture."""
    return F.avg_pool2d(images, block, ceil_mode=True)


def colour_shift(x: torch.Tensor, y: torch.Tensor, block: int = COLOUR_BLOCK) -> torch.Tensor:
    """RMS difference of the two images' chroma (Cb, Cr) averaged over `block`-pixel squares, in
    8-bit levels: a colour cast over regions, without the texture. v5's first codecs turned a red
    head brown (kodim23 at 0.05 bpp: 9-13 levels, HEIF 2) while their LPIPS and DISTS beat HEIF's."""
    matrix = torch.tensor(YCBCR[1:], dtype=x.dtype, device=x.device)
    chroma = torch.einsum("nchw,dc->ndhw", x - y, matrix)
    return 255 * block_means(chroma, block).pow(2).flatten(1).mean(1).sqrt()
