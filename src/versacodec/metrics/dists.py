"""DISTS (Ding et al. 2020): structure and texture similarity of VGG16 features.

The network is defined here (VGG16 with L2 pooling in place of max pooling, as in the paper).
VGG weights come from `VGG16Features`; the learned per-channel weights alpha/beta come from the
`weights.pt` file that the `DISTS_pytorch` PyPI package ships. That package is never imported
(it imports torchvision, which does not load beside the CPU torch here); only its file is read.

Inputs are RGB tensors in [0, 1], shape (N, 3, H, W); returns one distance per image
(0 = identical). Differentiable, so it can also serve as a loss.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from versacodec.errors import ModelError
from versacodec.metrics.backbones import VGG16Features, package_file

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
# Stabilisers from the paper's reference implementation.
_C1 = 1e-6
_C2 = 1e-6


class L2Pooling(nn.Module):
    """sqrt(blur(x²)) with a 3×3 Hann window, stride 2: an anti-aliased replacement for max pooling."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        window = torch.from_numpy(np.hanning(5)[1:-1]).float()
        kernel = window[:, None] * window[None, :]
        self.register_buffer("kernel", (kernel / kernel.sum()).expand(channels, 1, 3, 3).contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blurred = F.conv2d(x.pow(2), self.kernel, stride=2, padding=1, groups=x.shape[1])
        return (blurred + 1e-12).sqrt()


class DISTS(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = VGG16Features(pool_factory=L2Pooling)
        # The raw image counts as a sixth "feature" of 3 channels.
        self.channels = (3, *self.features.channels)
        weights = torch.load(package_file("DISTS_pytorch", "weights.pt"), map_location="cpu", weights_only=True)
        total = sum(self.channels)
        for key in ("alpha", "beta"):
            if tuple(weights[key].shape) != (1, total, 1, 1):
                raise ModelError(f"DISTS {key} has shape {tuple(weights[key].shape)}, expected (1, {total}, 1, 1)")
        scale = weights["alpha"].sum() + weights["beta"].sum()
        self.register_buffer("alpha", weights["alpha"] / scale)
        self.register_buffer("beta", weights["beta"] / scale)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x, *self.features((x - self.mean) / self.std)]

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        alphas = torch.split(self.alpha, self.channels, dim=1)
        betas = torch.split(self.beta, self.channels, dim=1)
        similarity = x.new_zeros(x.shape[0])
        for fx, fy, alpha, beta in zip(self._features(x), self._features(y), alphas, betas, strict=True):
            mean_x, mean_y = fx.mean((2, 3), keepdim=True), fy.mean((2, 3), keepdim=True)
            # The paper's texture term compares means, its structure term the correlation.
            texture = (2 * mean_x * mean_y + _C1) / (mean_x.pow(2) + mean_y.pow(2) + _C1)
            var_x = (fx - mean_x).pow(2).mean((2, 3), keepdim=True)
            var_y = (fy - mean_y).pow(2).mean((2, 3), keepdim=True)
            covariance = (fx * fy).mean((2, 3), keepdim=True) - mean_x * mean_y
            structure = (2 * covariance + _C2) / (var_x + var_y + _C2)
            similarity = similarity + (alpha * texture + beta * structure).sum((1, 2, 3))
        return 1 - similarity
