"""Periodic-artifact measure: how far the spectrum stands out at the frequencies of a grid.

Upsampling layers (pixel shuffle, transposed convolutions), a latent grid or a block transform
leave a pattern that repeats every 2, 4 or 8 pixels: in the power spectrum, narrow peaks at the
multiples of H/s and W/s. Learned perceptual metrics often reward that pattern as texture while a
person sees a grid. For each such frequency this takes the spectrum's maximum within one bin
(`PEAK_RADIUS`) over the median of a ring around it (distances `RING`), in luma and in both
chroma channels (a colour dither is a grid too) with a Hann window; an image's score is the
largest of these ratios. Natural photos score about 1–10 in luma;
`periodic_ratio` compares a decoded image with its original (1: no more periodic than it).
"""

from __future__ import annotations

import math
from functools import cache

import torch

from versacodec.metrics.quality import YCBCR

PERIOD = 8  # every frequency of a pattern of period 2, 4 or 8 px lies on the 1/8 grid
PEAK_RADIUS = 1
RING = (3, 6)  # Chebyshev distances of the neighbourhood, in frequency bins


@cache
def _ring_offsets() -> tuple[torch.Tensor, torch.Tensor]:
    span = torch.arange(-RING[1], RING[1] + 1)
    dy, dx = torch.meshgrid(span, span, indexing="ij")
    distance = torch.maximum(dy.abs(), dx.abs())
    keep = (distance >= RING[0]) & (distance <= RING[1])
    return dy[keep], dx[keep]


def _windowed_channels(images: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB → (..., 3, H, W) Y, Cb, Cr, mean-removed, times a 2-D Hann window."""
    channels = torch.einsum("...chw,dc->...dhw", images, torch.tensor(YCBCR, dtype=images.dtype,
                                                                      device=images.device))
    height, width = images.shape[-2:]
    window = torch.outer(torch.hann_window(height, periodic=False, dtype=images.dtype, device=images.device),
                         torch.hann_window(width, periodic=False, dtype=images.dtype, device=images.device))
    return (channels - channels.mean((-2, -1), keepdim=True)) * window


def periodic_peaks(image: torch.Tensor, period: int = PERIOD) -> torch.Tensor:
    """(3 channels Y/Cb/Cr, `period`.bit_length() − 1 classes) the largest peak-to-neighbourhood
    ratio among the grid frequencies of each channel and each period class (2, 4, ... `period` px:
    a frequency (i, j)/`period` belongs to the class period / gcd(i, j, period)).
    `image`: (3, H, W) or (1, 3, H, W) RGB in [0, 1]; both sides at least 4 × period."""
    image = image.squeeze(0)
    height, width = image.shape[-2:]
    if min(height, width) < 4 * period:
        raise ValueError(f"a {width}x{height} image is too small for the periodic measure")
    powers = torch.fft.fft2(_windowed_channels(image.double())).abs().square()
    ring_y, ring_x = _ring_offsets()
    near = torch.arange(-PEAK_RADIUS, PEAK_RADIUS + 1)
    classes = [2**k for k in range(1, period.bit_length())]
    worst = torch.zeros(len(powers), len(classes), dtype=torch.float64)
    for i in range(period):
        for j in range(period):
            if i == j == 0:
                continue
            column = classes.index(period // math.gcd(i, j, period))
            fy, fx = round(i * height / period), round(j * width / period)
            for channel, power in enumerate(powers):
                peak = power[(fy + near[:, None]) % height, (fx + near[None, :]) % width].max()
                ring = power[(fy + ring_y) % height, (fx + ring_x) % width].median().clamp_min(1e-20)
                worst[channel, column] = max(worst[channel, column], peak / ring)
    return worst


def periodic_peak(image: torch.Tensor, period: int = PERIOD) -> float:
    """The largest peak-to-neighbourhood ratio over the channels and frequencies of the grid."""
    return float(periodic_peaks(image, period).max())


def periodic_ratio(original: torch.Tensor, decoded: torch.Tensor, period: int = PERIOD) -> float:
    """How much more periodic the decoded image is than its original (1: no more), in its worst
    channel and period class. Compared class by class, because photos carry their own periodic
    traces (Kodak's chroma has period-2 peaks in the thousands, from its 4:2:0 source), which must
    neither hide a decoder's pattern at other periods nor count against it."""
    return float((periodic_peaks(decoded, period) / periodic_peaks(original, period)).max())


def periodic_excess(rendered: torch.Tensor, target: torch.Tensor, period: int = PERIOD,
                    margin: float = 1.1) -> torch.Tensor:
    """Training penalty against periodic artifacts, differentiable in `rendered`.

    For batches (N, 3, H, W) with H and W multiples of `period` (every grid frequency is then an
    exact bin) cut at one phase of the grid, the peak-to-ring ratio (ring mean instead of median)
    of the power of the batch's mean complex spectrum at each grid frequency is compared with the
    targets'; the penalty is the sum over the frequencies, in luma and both chroma channels, of
    the excess of the log ratio beyond log(`margin`) (a sum: a 2-px checkerboard lives on 3 of the
    63 frequencies and must not be diluted by the others).

    Why the mean of complex spectra: a pattern locked to the grid has the same phase in every crop
    and keeps its power, while content at random phases loses a factor N. A periodic component's
    peak-to-ring ratio grows with the pixels of the spectrum (its power with their square, that of
    broadband content linearly), so one small crop would hide a pattern that a whole photo shows;
    N crops added in phase see it as a picture of N times their size does."""
    height, width = rendered.shape[-2:]
    if height % period or width % period:
        raise ValueError(f"crop sides must be multiples of {period}, not {width}x{height}")
    ring_y, ring_x = _ring_offsets()
    near = torch.arange(-PEAK_RADIUS, PEAK_RADIUS + 1)
    rows = torch.tensor([i * height // period for i in range(period)])
    cols = torch.tensor([j * width // period for j in range(period)])
    grid_y, grid_x = (g.flatten()[1:] for g in torch.meshgrid(rows, cols, indexing="ij"))  # without (0, 0)

    def log_ratio(images: torch.Tensor) -> torch.Tensor:
        """(3 channels, 63 frequencies) log peak-to-ring ratios of the batch's coherent spectrum."""
        power = torch.fft.fft2(_windowed_channels(images.float())).mean(0).abs().square()
        floor = power.mean((-2, -1), keepdim=True) * 1e-6 + 1e-12
        power = power + floor
        peak = power[:, (grid_y[:, None, None] + near[:, None]) % height,
                     (grid_x[:, None, None] + near[None, :]) % width].amax((-2, -1))
        ring = power[:, (grid_y[:, None] + ring_y) % height, (grid_x[:, None] + ring_x) % width].mean(-1)
        return torch.log(peak) - torch.log(ring)

    with torch.no_grad():
        reference = log_ratio(target)
    return torch.relu(log_ratio(rendered) - reference - torch.log(torch.tensor(margin))).sum()
