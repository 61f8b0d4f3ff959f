"""Spatial-channel context (ELIC): y is split into uneven channel groups coded one after another;
within a group, the checkerboard 'anchor' half is coded first and the other half is predicted
from it. Every network here feeds the entropy coder, so all are exact fixed-point layers.
"""

from __future__ import annotations

import torch
from torch import nn

from versacodec.entropy.fixed_point import CodingConv2d


def checkerboard(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """Boolean (1, 1, H, W) mask of anchor positions ((row + column) even)."""
    rows = torch.arange(height, device=device).view(-1, 1)
    cols = torch.arange(width, device=device).view(1, -1)
    return ((rows + cols) % 2 == 0).view(1, 1, height, width)


class GroupParameters(nn.Module):
    """Predicts (mean, scale) of one channel group from the hyper features, the groups already
    decoded (channel context) and this group's anchors (spatial context, absent for anchors).

    The first layer is split by input so the hyper and channel parts are computed once per
    group and only the spatial part once per checkerboard half."""

    def __init__(self, hyper_channels: int, previous_channels: int, group_channels: int, hidden: int) -> None:
        super().__init__()
        width = 2 * hidden
        self.hyper_in = CodingConv2d(hyper_channels, width, 1)
        self.channel_context = None
        if previous_channels:
            self.channel_context = nn.Sequential(
                CodingConv2d(previous_channels, hidden, 3, padding=1),
                nn.ReLU(),
                CodingConv2d(hidden, width, 3, padding=1, bias=False),
            )
        self.spatial_context = nn.Sequential(
            CodingConv2d(group_channels, hidden, 5, padding=2),
            nn.ReLU(),
            CodingConv2d(hidden, width, 1, bias=False),
        )
        self.head = nn.Sequential(
            nn.ReLU(),
            CodingConv2d(width, hidden, 1),
            nn.ReLU(),
            CodingConv2d(hidden, 2 * group_channels, 1),
        )

    def prepare(self, hyper: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
        """The part shared by both halves: hyper features plus context from earlier groups."""
        base = self.hyper_in(hyper)
        return base if self.channel_context is None else base + self.channel_context(previous)

    def forward(self, base: torch.Tensor, anchors: torch.Tensor | None) -> torch.Tensor:
        """`anchors`: this group's decoded anchor values with the other half zeroed, or None for the
        anchor pass. Returns the means and the scales before gain scaling, as one tensor (means in
        its first half of channels) that the codec can compute in tiles."""
        features = base if anchors is None else base + self.spatial_context(anchors)
        means, scales = self.head(features).chunk(2, 1)
        return torch.cat((means, scales.abs()), 1)
