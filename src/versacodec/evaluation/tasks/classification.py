"""ImageNet top-1 accuracy on an ImageNet-style set (labels.csv), with two classifiers:

- `classification`: EfficientNet-Lite0 from PyPI (the same network as the encoder-side tagger),
  centre crop int(224/256 × short side), bicubic to 224, (x − 127) / 128;
- `classification-mobilenet`: MobileNetV2 (quantised TFLite from the model directory), same crop,
  bilinear to 224 (TF-slim's resize); 1001 outputs where index 0 is "background".
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import ClassVar

import numpy as np
from PIL import Image

from versacodec.evaluation.datasets import Dataset, DatasetItem
from versacodec.evaluation.tasks.base import Task
from versacodec.evaluation.tasks.common import tflite_input, tflite_interpreter
from versacodec.paths import third_party_model
from versacodec.semantics.classifier import centre_crop

MOBILENET_MODEL = "classification/tf2_mobilenet_v2_1.0_224_ptq.tflite"


class _TopOne(Task):
    metrics: ClassVar[dict[str, bool]] = {"top1": True}
    kinds = frozenset({"imagenet"})
    per_image_keys = ("top1", "correct")

    def record(self, item: DatasetItem, prediction: int | None, reference: None) -> dict:
        return {"top1": prediction, "correct": prediction is not None and prediction == item.label}

    def score(self, dataset: Dataset, records: Mapping[str, dict]) -> dict[str, float]:
        return {"top1": 100.0 * float(np.mean([bool(r["correct"]) for r in records.values()]))}


class EfficientNetClassification(_TopOne):
    name = "classification"
    description = "ImageNet top-1 (EfficientNet-Lite0, crop 224/256, bicubic 224)"

    def available(self) -> tuple[bool, str]:
        from versacodec.errors import ModelError
        from versacodec.semantics.classifier import load_efficientnet_lite0

        try:
            load_efficientnet_lite0()
        except (ImportError, ModelError) as exc:
            return False, f"EfficientNet-Lite0 unavailable: {exc}"
        return True, ""

    def predict(self, image: Image.Image) -> int:
        import torch

        from versacodec.semantics.classifier import load_efficientnet_lite0

        model, preprocess = load_efficientnet_lite0()
        with torch.no_grad():
            return int(model(preprocess(image)[None]).argmax(1))


class MobileNetClassification(_TopOne):
    name = "classification-mobilenet"
    description = "ImageNet top-1 (MobileNetV2 int8 TFLite, crop 224/256, bilinear 224)"
    packages: ClassVar[dict[str, str]] = {"ai_edge_litert": "ai-edge-litert"}
    model_file = MOBILENET_MODEL

    @cached_property
    def _interpreter(self):
        return tflite_interpreter(third_party_model(MOBILENET_MODEL))

    def predict(self, image: Image.Image) -> int:
        interpreter = self._interpreter
        rgb = np.asarray(centre_crop(image.convert("RGB"), Image.Resampling.BILINEAR))
        tflite_input(interpreter, rgb, float_range=(-1.0, 1.0))
        interpreter.invoke()
        scores = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
        return int(scores.argmax()) - 1  # −1: "background", never a correct answer
