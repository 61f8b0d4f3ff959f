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
    """Predicts (mean, raw scale) of one channel group from the hyper features, the groups already
    decoded (channel context) and this group's anchors (spatial context, zero for anchors)."""

    def __init__(self, hyper_channels: int, previous_channels: int, group_channels: int, hidden: int) -> None:
        super().__init__()
        self.previous_channels = previous_channels
        context_out = 2 * group_channels
        self.channel_context = None
        if previous_channels:
            self.channel_context = nn.Sequential(
                CodingConv2d(previous_channels, hidden, 3, padding=1),
                nn.ReLU(),
                CodingConv2d(hidden, context_out, 3, padding=1),
            )
        self.spatial_context = CodingConv2d(group_channels, context_out, 5, padding=2)
        inputs = hyper_channels + context_out * (2 if previous_channels else 1)
        self.aggregate = nn.Sequential(
            CodingConv2d(inputs, hidden * 2, 1),
            nn.ReLU(),
            CodingConv2d(hidden * 2, hidden, 1),
            nn.ReLU(),
            CodingConv2d(hidden, 2 * group_channels, 1),
        )

    def channel_features(self, previous: torch.Tensor | None) -> torch.Tensor | None:
        """Context from the groups decoded before this one (shared by both checkerboard halves)."""
        return None if self.channel_context is None else self.channel_context(previous)

    def forward(self, hyper: torch.Tensor, channel: torch.Tensor | None, anchors: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """`channel`: `channel_features(previous)`; `anchors`: this group's decoded anchor values with
        the other half zeroed, or None for the anchor pass. Returns (means, scales) before gains."""
        features = [hyper]
        if channel is not None:
            features.append(channel)
        if anchors is None:
            spatial_shape = (hyper.shape[0], self.spatial_context.out_channels, *hyper.shape[2:])
            features.append(hyper.new_zeros(spatial_shape))
        else:
            features.append(self.spatial_context(anchors))
        means, scales = self.aggregate(torch.cat(features, 1)).chunk(2, 1)
        return means, scales.abs()
