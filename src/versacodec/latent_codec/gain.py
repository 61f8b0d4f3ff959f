"""Variable rate from one model with gain units (Cui et al., CVPR 2021).

y is multiplied by a per-channel gain before rounding (a larger gain = a finer quantiser = more
bits) and divided by the inverse gain after; likewise z with hyper gains. `rate_levels` anchor
vectors are trained; any level in between is a log-linear interpolation. For coding, the
interpolated vectors for quality 0..100 are computed once (`build_quality_table`) and stored
rounded to the fixed-point grid, so encoder and decoder use bit-identical gains.
"""

from __future__ import annotations

import torch
from torch import nn

from versacodec.entropy.fixed_point import to_grid

GAIN_BITS = 16  # gains are stored on a finer grid than activations; products stay exact


class GainUnits(nn.Module):
    def __init__(self, rate_levels: int, y_channels: int, z_channels: int, quality_levels: int,
                 initial_log_gains: torch.Tensor) -> None:
        super().__init__()
        self.rate_levels, self.quality_levels = rate_levels, quality_levels
        init = initial_log_gains.view(-1, 1)
        self.log_gain = nn.Parameter(init.repeat(1, y_channels).clone())
        self.log_inverse_gain = nn.Parameter(-init.repeat(1, y_channels).clone())
        self.log_hyper_gain = nn.Parameter(torch.zeros(rate_levels, z_channels))
        self.log_hyper_inverse_gain = nn.Parameter(torch.zeros(rate_levels, z_channels))
        for name, channels in (("gain", y_channels), ("inverse_gain", y_channels), ("hyper_gain", z_channels),
                               ("hyper_inverse_gain", z_channels)):
            self.register_buffer(f"quality_{name}", torch.ones(quality_levels, channels, dtype=torch.float64))

    def interpolate(self, level: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gains for continuous levels (B,) in [0, rate_levels − 1] → each (B, C, 1, 1)."""
        level = level.clamp(0, self.rate_levels - 1)
        low = level.floor().long().clamp(max=self.rate_levels - 2)
        fraction = (level - low).view(-1, 1)
        out = {}
        for name in ("gain", "inverse_gain", "hyper_gain", "hyper_inverse_gain"):
            table = getattr(self, f"log_{name}")
            log_value = table[low] * (1 - fraction) + table[low + 1] * fraction
            out[name] = torch.exp(log_value)[..., None, None]
        return out

    def quality_to_level(self, quality: int) -> float:
        return quality / (self.quality_levels - 1) * (self.rate_levels - 1)

    @torch.no_grad()
    def build_quality_table(self) -> None:
        levels = torch.tensor([self.quality_to_level(q) for q in range(self.quality_levels)])
        gains = self.interpolate(levels)
        for name, value in gains.items():
            getattr(self, f"quality_{name}").copy_(to_grid(value.flatten(1).double(), GAIN_BITS))

    def for_quality(self, quality: int, qualities: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Exact stored gains for coding, each (1, C, 1, 1) float64. With `qualities` ((h, w)
        integer qualities on y's grid) y's gains vary per position, (1, C, h, w); z keeps `quality`'s.
        The entropy model predicts y's scales and means before the gain, so any map decodes with
        the scales it was coded with."""
        for value in (quality,) if qualities is None else (quality, qualities.min(), qualities.max()):
            if not 0 <= int(value) < self.quality_levels:
                raise ValueError(f"quality must be in 0..{self.quality_levels - 1}")
        gains = {name: getattr(self, f"quality_{name}")[quality].view(1, -1, 1, 1)
                 for name in ("gain", "inverse_gain", "hyper_gain", "hyper_inverse_gain")}
        if qualities is not None:
            for name in ("gain", "inverse_gain"):
                gains[name] = getattr(self, f"quality_{name}")[qualities.long()].permute(2, 0, 1)[None]
        return gains
