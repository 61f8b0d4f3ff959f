"""COCO object detection with YOLOX-nano (onnxruntime), scored by pycocotools box mAP.

Protocol (docs/baselines.md, YOLOX's own evaluation settings): BGR 0-255 input letterboxed to the
top-left of 416×416 with grey 114, score = objectness × best class score ≥ 0.01, class-aware NMS
at IoU 0.65, at most 100 detections per image.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import ClassVar

from PIL import Image

from versacodec.evaluation.datasets import Dataset, DatasetItem
from versacodec.evaluation.tasks.base import Task
from versacodec.evaluation.tasks.common import COCO_METRICS, coco_average_precision, coco_category_ids
from versacodec.semantics.detectors import YOLOX_MODEL as MODEL
from versacodec.semantics.detectors import YoloxDetector

CONFIDENCE = 0.01
NMS_IOU = 0.65
MAX_DETECTIONS = 100


class Detection(Task):
    name = "detection"
    description = "COCO box mAP (YOLOX-nano, 416 letterbox, conf 0.01, class-aware NMS 0.65, ≤100 boxes)"
    # Small / medium / large objects say where accuracy goes (issue #27's ceilings benchmark).
    metrics: ClassVar[dict[str, bool]] = dict.fromkeys(COCO_METRICS, True)
    kinds = frozenset({"coco"})
    packages: ClassVar[dict[str, str]] = {"onnxruntime": "onnxruntime", "pycocotools": "pycocotools"}
    model_file = MODEL

    @cached_property
    def _detector(self) -> YoloxDetector:
        return YoloxDetector(CONFIDENCE, NMS_IOU, MAX_DETECTIONS)

    def predict(self, image: Image.Image) -> list[list[float]]:
        """Boxes as [x, y, width, height, score, class index 0-79] in original pixels."""
        return self._detector.predict(image)

    def record(self, item: DatasetItem, prediction: list[list[float]] | None, reference: None) -> dict:
        return {"boxes": prediction or []}

    def score(self, dataset: Dataset, records: Mapping[str, dict]) -> dict[str, float]:
        categories = coco_category_ids(dataset.annotations)
        by_id = {item.id: item.coco_id for item in dataset.items}
        results = [{"image_id": by_id[image], "category_id": categories[int(box[5])], "bbox": box[:4],
                    "score": box[4]}
                   for image, record in records.items() for box in record["boxes"]]
        return coco_average_precision(dataset.annotations, [by_id[i] for i in records], results, "bbox")
