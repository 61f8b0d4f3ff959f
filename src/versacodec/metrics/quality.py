"""Pixel-fidelity metrics on RGB tensors in [0, 1], shape (N, 3, H, W); one value per image."""

from __future__ import annotations

import torch


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
