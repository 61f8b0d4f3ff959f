"""COCO instance segmentation with YOLOv8n-seg (int8 TFLite), scored by pycocotools mask mAP.

Input: RGB / 255, letterboxed to the centre of 640×640 with grey 114. Output 1×116×8400 (per
anchor: xywh normalised to the input, 80 class scores, 32 mask coefficients) and 160×160×32
prototypes; mask = sigmoid(prototypes · coefficients), upsampled, un-letterboxed, cut to its box
and thresholded at 0.5. Same selection as detection: best class ≥ 0.01, class-aware NMS 0.65,
at most 100 instances.
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
    coco_average_precision,
    coco_category_ids,
    tflite_input,
    tflite_interpreter,
)
from versacodec.paths import third_party_model
from versacodec.semantics.detectors import class_aware_nms, letterbox

MODEL = "segmentation/yolov8n-seg_int8.tflite"
INPUT_SIZE = 640
CLASSES = 80
CONFIDENCE = 0.01
NMS_IOU = 0.65
MAX_INSTANCES = 100


class InstanceSegmentation(Task):
    name = "instance-segmentation"
    description = "COCO mask mAP (YOLOv8n-seg int8, 640 letterbox, conf 0.01, class-aware NMS 0.65, ≤100)"
    metrics: ClassVar[dict[str, bool]] = {"map": True, "map50": True}
    kinds = frozenset({"coco"})
    packages: ClassVar[dict[str, str]] = {"ai_edge_litert": "ai-edge-litert", "cv2": "opencv-python-headless",
                                          "pycocotools": "pycocotools"}
    model_file = MODEL

    @cached_property
    def _interpreter(self):
        return tflite_interpreter(third_party_model(MODEL))

    def _run(self, canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        interpreter = self._interpreter
        tflite_input(interpreter, canvas)
        interpreter.invoke()
        outputs = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
        anchors = next(o for o in outputs if o.ndim == 3)[0].T  # (8400, 116)
        prototypes = next(o for o in outputs if o.ndim == 4)[0]  # (160, 160, 32)
        return anchors, prototypes

    def predict(self, image: Image.Image) -> dict:
        """{"size": [H, W], "instances": [[x, y, w, h, score, class index, RLE counts], ...]}."""
        import cv2
        from pycocotools import mask as mask_utils

        rgb = np.asarray(image.convert("RGB"))
        height, width = rgb.shape[:2]
        canvas, scale, (left, top) = letterbox(rgb, INPUT_SIZE, centre=True)
        anchors, prototypes = self._run(canvas)
        class_scores = anchors[:, 4 : 4 + CLASSES]
        classes = class_scores.argmax(1)
        scores = class_scores[np.arange(len(anchors)), classes]
        keep = np.flatnonzero(scores >= CONFIDENCE)
        xywh = anchors[keep, :4] * INPUT_SIZE
        corners = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
        chosen = keep[class_aware_nms(corners, scores[keep], classes[keep], NMS_IOU, MAX_INSTANCES)]
        if chosen.size == 0:
            return {"size": [height, width], "instances": []}
        coefficients = anchors[chosen, 4 + CLASSES :]
        logits = prototypes.reshape(-1, prototypes.shape[-1]) @ coefficients.T
        maps = (1 / (1 + np.exp(-logits))).reshape(*prototypes.shape[:2], -1)
        region_w, region_h = round(width * scale), round(height * scale)
        instances = []
        for column, index in enumerate(chosen):
            upsampled = cv2.resize(maps[:, :, column], (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
            inside = upsampled[top : top + region_h, left : left + region_w]
            full = cv2.resize(inside, (width, height), interpolation=cv2.INTER_LINEAR) > 0.5
            cx, cy, w, h = anchors[index, :4] * INPUT_SIZE
            x1, y1 = (cx - w / 2 - left) / scale, (cy - h / 2 - top) / scale
            x2, y2 = (cx + w / 2 - left) / scale, (cy + h / 2 - top) / scale
            box = np.zeros_like(full)
            box[max(0, int(y1)) : max(0, int(np.ceil(y2))), max(0, int(x1)) : max(0, int(np.ceil(x2)))] = True
            rle = mask_utils.encode(np.asfortranarray((full & box).astype(np.uint8)))
            instances.append([round(float(x1), 2), round(float(y1), 2), round(float(x2 - x1), 2),
                              round(float(y2 - y1), 2), round(float(scores[index]), 5), int(classes[index]),
                              rle["counts"].decode("ascii")])
        return {"size": [height, width], "instances": instances}

    def record(self, item: DatasetItem, prediction: dict | None, reference: None) -> dict:
        return prediction or {"instances": []}

    def score(self, dataset: Dataset, records: Mapping[str, dict]) -> dict[str, float]:
        categories = coco_category_ids(dataset.annotations)
        by_id = {item.id: item.coco_id for item in dataset.items}
        results = [{"image_id": by_id[image], "category_id": categories[int(inst[5])], "bbox": inst[:4],
                    "score": inst[4], "segmentation": {"size": record["size"], "counts": inst[6]}}
                   for image, record in records.items() for inst in record["instances"]]
        return coco_average_precision(dataset.annotations, [by_id[i] for i in records], results, "segm")
