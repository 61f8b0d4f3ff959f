"""Semantic segmentation stability: DeepLabV3-MobileNetV2 (PASCAL VOC, 21 classes, quantised
TFLite) on the decoded image against its own prediction on the original (no ground truth needed).

Both label maps are compared at the model's 513×513 output; per image a 21×22 confusion matrix
is kept (the extra column: "no prediction", used when coding failed), and the set's mIoU comes
from the summed matrix over classes present in either map.
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

MODEL = "segmentation/deeplabv3_mnv2_pascal_quant.tflite"
INPUT_SIZE = 513
CLASSES = 21


class SemanticSegmentation(Task):
    name = "semantic-segmentation"
    description = "mIoU vs the original's prediction (DeepLabV3-MobileNetV2 VOC, 513×513)"
    metrics: ClassVar[dict[str, bool]] = {"miou": True, "pixel-agreement": True}
    uses_reference = True
    packages: ClassVar[dict[str, str]] = {"ai_edge_litert": "ai-edge-litert"}
    model_file = MODEL

    @cached_property
    def _interpreter(self):
        return tflite_interpreter(third_party_model(MODEL))

    def predict(self, image: Image.Image) -> np.ndarray:
        """(513, 513) class indices."""
        interpreter = self._interpreter
        resized = image.convert("RGB").resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR)
        tflite_input(interpreter, np.asarray(resized), float_range=(-1.0, 1.0))
        interpreter.invoke()
        labels = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        return labels.reshape(INPUT_SIZE, INPUT_SIZE).astype(np.int64)

    def record(self, item: DatasetItem, prediction: np.ndarray | None, reference: np.ndarray) -> dict:
        predicted = np.full_like(reference, CLASSES) if prediction is None else prediction
        pairs = reference.ravel() * (CLASSES + 1) + predicted.ravel()
        confusion = np.bincount(pairs, minlength=CLASSES * (CLASSES + 1)).reshape(CLASSES, CLASSES + 1)
        return {"confusion": confusion.tolist()}

    def score(self, dataset: Dataset, records: Mapping[str, dict]) -> dict[str, float]:
        confusion = np.sum([np.asarray(r["confusion"], dtype=np.int64) for r in records.values()], axis=0)
        hits = np.diag(confusion[:, :CLASSES]).astype(np.float64)
        union = confusion.sum(1) + confusion[:, :CLASSES].sum(0) - hits
        present = union > 0
        miou = float(np.mean(hits[present] / union[present])) if present.any() else 1.0
        return {"miou": 100.0 * miou, "pixel-agreement": 100.0 * float(hits.sum() / max(confusion.sum(), 1))}
