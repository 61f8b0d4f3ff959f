"""COCO object detection with YOLOX-nano (onnxruntime), scored by pycocotools box mAP.

Protocol (BASELINES.md, YOLOX's own evaluation settings): BGR 0-255 input letterboxed to the
top-left of 416×416 with grey 114, score = objectness × best class score ≥ 0.01, class-aware NMS
at IoU 0.65, at most 100 detections per image.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import ClassVar

import numpy as np
from PIL import Image

from versacodec.evaluation.datasets import Dataset, DatasetItem
from versacodec.evaluation.tasks.base import Task
from versacodec.evaluation.tasks.common import (
    class_aware_nms,
    coco_average_precision,
    coco_category_ids,
    letterbox,
    model_availability,
)
from versacodec.paths import third_party_model

MODEL = "detection/yolox_nano.onnx"
INPUT_SIZE = 416
STRIDES = (8, 16, 32)
CONFIDENCE = 0.01
NMS_IOU = 0.65
MAX_DETECTIONS = 100


def _grid() -> tuple[np.ndarray, np.ndarray]:
    """Cell offsets (x, y) and strides of YOLOX's 3549 anchors, in its output order."""
    cells, strides = [], []
    for stride in STRIDES:
        side = INPUT_SIZE // stride
        ys, xs = np.mgrid[0:side, 0:side]
        cells.append(np.stack([xs.ravel(), ys.ravel()], 1))
        strides.append(np.full((side * side, 1), stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strides).astype(np.float32)


class Detection(Task):
    name = "detection"
    description = "COCO box mAP (YOLOX-nano, 416 letterbox, conf 0.01, class-aware NMS 0.65, ≤100 boxes)"
    metrics: ClassVar[dict[str, bool]] = {"map": True, "map50": True}
    kinds = frozenset({"coco"})

    def available(self) -> tuple[bool, str]:
        try:
            import onnxruntime  # noqa: F401
            import pycocotools  # noqa: F401
        except ImportError as exc:
            return False, f"{exc.name} is not installed (pip install 'versacodec[eval]')"
        return model_availability(MODEL)

    @cached_property
    def _session(self):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # parallelism comes from --workers
        return onnxruntime.InferenceSession(str(third_party_model(MODEL)), options,
                                            providers=["CPUExecutionProvider"])

    def predict(self, image: Image.Image) -> list[list[float]]:
        """Boxes as [x, y, width, height, score, class index 0-79] in original pixels."""
        canvas, scale, _ = letterbox(np.asarray(image.convert("RGB")), INPUT_SIZE, centre=False)
        bgr = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32)
        output = self._session.run(None, {"images": bgr})[0][0]
        cells, strides = _grid()
        centres = (output[:, :2] + cells) * strides
        sizes = np.exp(output[:, 2:4]) * strides
        classes = output[:, 5:].argmax(1)
        scores = output[:, 4] * output[np.arange(len(output)), 5 + classes]
        keep = scores >= CONFIDENCE
        corners = np.concatenate([centres - sizes / 2, centres + sizes / 2], 1)[keep] / scale
        scores, classes = scores[keep], classes[keep]
        chosen = class_aware_nms(corners, scores, classes, NMS_IOU, MAX_DETECTIONS)
        return [[round(float(x1), 2), round(float(y1), 2), round(float(x2 - x1), 2), round(float(y2 - y1), 2),
                 round(float(scores[i]), 5), int(classes[i])]
                for i, (x1, y1, x2, y2) in zip(chosen, corners[chosen], strict=True)]

    def record(self, item: DatasetItem, prediction: list[list[float]] | None, reference: None) -> dict:
        return {"boxes": prediction or []}

    def score(self, dataset: Dataset, records: Mapping[str, dict]) -> dict[str, float]:
        categories = coco_category_ids(dataset.annotations)
        by_id = {item.id: item.coco_id for item in dataset.items}
        results = [{"image_id": by_id[image], "category_id": categories[int(box[5])], "bbox": box[:4],
                    "score": box[4]}
                   for image, record in records.items() for box in record["boxes"]]
        return coco_average_precision(dataset.annotations, [by_id[i] for i in records], results, "bbox")
