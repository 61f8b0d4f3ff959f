"""Real-ESRGAN's two generator architectures as plain torch modules (no torchvision, no ncnn).

- `SRVGGNetCompact` (realesr-general-x4v3): convolutions with PReLU at the input resolution, a
  convolution to 3·s² channels, pixel shuffle ×s, plus the nearest-upsampled input.
- `RRDBNet` (RealESRGAN_x4plus): residual-in-residual dense blocks at the input resolution, two
  nearest ×2 upsamplings each followed by a convolution, LeakyReLU(0.2) throughout.

Layers are registered in the order their weights appear in the released files, so that
`ncnn.load_into` fills them in order (Real-ESRGAN's own module layout, re-implemented here).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class SRVGGConfig:
    features: int = 64
    convolutions: int = 32  # body convolutions after the first (the release has 32)
    scale: int = 4


class SRVGGNetCompact(nn.Module):
    def __init__(self, config: SRVGGConfig = SRVGGConfig()) -> None:
        super().__init__()
        self.config = config
        f = config.features
        layers: list[nn.Module] = [nn.Conv2d(3, f, 3, padding=1), nn.PReLU(f)]
        for _ in range(config.convolutions):
            layers += [nn.Conv2d(f, f, 3, padding=1), nn.PReLU(f)]
        layers.append(nn.Conv2d(f, 3 * config.scale**2, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, added: torch.Tensor | None = None) -> torch.Tensor:
        """`added`: features summed into the first layer's activations (a conditioning input)."""
        features = self.body[1](self.body[0](image))
        if added is not None:
            features = features + added
        residual = F.pixel_shuffle(self.body[2:](features), self.config.scale)
        return residual + F.interpolate(image, scale_factor=self.config.scale, mode="nearest")


@dataclass(frozen=True)
class RRDBConfig:
    features: int = 64
    growth: int = 32
    blocks: int = 23


class _DenseBlock(nn.Module):
    """Five convolutions, each fed every earlier output; 0.2-scaled residual."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(features + i * growth, growth if i < 4 else features, 3, padding=1) for i in range(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [x]
        for index, conv in enumerate(self.convs):
            out = conv(torch.cat(outputs, dim=1))
            if index < 4:
                outputs.append(F.leaky_relu(out, 0.2))
        return x + 0.2 * out


class _RRDB(nn.Module):
    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.dense = nn.Sequential(*(_DenseBlock(features, growth) for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.dense(x)


class RRDBNet(nn.Module):
    """×4: conv → blocks → conv (+ skip) → 2 × (nearest ×2, conv) → conv → conv to RGB."""

    scale = 4

    def __init__(self, config: RRDBConfig = RRDBConfig()) -> None:
        super().__init__()
        self.config = config
        f = config.features
        self.conv_first = nn.Conv2d(3, f, 3, padding=1)
        self.body = nn.Sequential(*(_RRDB(f, config.growth) for _ in range(config.blocks)))
        self.conv_body = nn.Conv2d(f, f, 3, padding=1)
        self.conv_up1 = nn.Conv2d(f, f, 3, padding=1)
        self.conv_up2 = nn.Conv2d(f, f, 3, padding=1)
        self.conv_hr = nn.Conv2d(f, f, 3, padding=1)
        self.conv_last = nn.Conv2d(f, 3, 3, padding=1)

    def forward(self, image: torch.Tensor, added: torch.Tensor | None = None) -> torch.Tensor:
        """`added`: features summed into the first convolution's output (a conditioning input)."""
        features = self.conv_first(image)
        if added is not None:
            features = features + added
        features = features + self.conv_body(self.body(features))
        for conv in (self.conv_up1, self.conv_up2):
            features = F.leaky_relu(conv(F.interpolate(features, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(features), 0.2))
