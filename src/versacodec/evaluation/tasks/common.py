"""Pieces several task evaluators share: locating model files, letterboxing, NMS, TFLite loading."""

from __future__ import annotations

import contextlib
import io
from functools import cache
from pathlib import Path

import numpy as np

from versacodec.errors import InputError
from versacodec.paths import models_dir, third_party_model

LETTERBOX_FILL = 114  # the grey YOLO models were trained with


def model_availability(*relatives: str) -> tuple[bool, str]:
    """(True, "") when every file exists in the model directory, else (False, what is missing and where)."""
    missing = [r for r in relatives if third_party_model(r) is None]
    if not missing:
        return True, ""
    root = models_dir()
    where = f"in {root}" if root is not None else "(no model directory: set VERSACODEC_MODELS)"
    return False, f"model file {', '.join(missing)} not found {where}"


def letterbox(rgb: np.ndarray, size: int, *, centre: bool) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Fit an (H, W, 3) uint8 image into size×size keeping its aspect, padded with grey.

    centre=False is YOLOX's convention (top-left, resized sides truncated), centre=True
    Ultralytics' (centred, sides rounded). Returns (canvas, scale, (left, top)); original
    coordinates = (letterboxed − (left, top)) / scale.
    """
    import cv2

    height, width = rgb.shape[:2]
    scale = min(size / height, size / width)
    to_int = round if centre else int
    new_w, new_h = max(1, to_int(width * scale)), max(1, to_int(height * scale))
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    left, top = ((size - new_w) // 2, (size - new_h) // 2) if centre else (0, 0)
    canvas = np.full((size, size, 3), LETTERBOX_FILL, dtype=np.uint8)
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas, scale, (left, top)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x1, y1, x2, y2) box against (N, 4) boxes."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def class_aware_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float,
                    max_detections: int) -> np.ndarray:
    """Greedy NMS within each class (boxes x1, y1, x2, y2); indices of kept boxes, best score first."""
    # Shifting each class to its own region makes one NMS pass class-aware.
    offset = classes[:, None].astype(np.float64) * (float(np.abs(boxes).max(initial=0)) + 1.0)
    shifted = boxes + offset
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_detections:
        best = order[0]
        keep.append(int(best))
        order = order[1:][box_iou(shifted[best], shifted[order[1:]]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def tflite_interpreter(path):
    """A TFLite interpreter (ai-edge-litert) with tensors allocated, on one thread."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def tflite_input(interpreter, rgb: np.ndarray, float_range: tuple[float, float] = (0.0, 1.0)) -> None:
    """Set the (H, W, 3) uint8 RGB image as input: raw bytes for quantised uint8 inputs (their scale
    is inside the model), else floats with 0..255 mapped onto `float_range`."""
    detail = interpreter.get_input_details()[0]
    if detail["dtype"] == np.uint8:
        tensor = rgb[None]
    else:
        low, high = float_range
        tensor = rgb[None].astype(np.float32) * ((high - low) / 255.0) + low
    interpreter.set_tensor(detail["index"], tensor.astype(detail["dtype"]))


@cache
def coco_ground_truth(annotations: Path):
    """pycocotools COCO object for an instances JSON (loaded once per process, quietly)."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(annotations))


def coco_category_ids(annotations: Path) -> list[int]:
    """COCO category ids in the order of the 80 model outputs (sorted by id)."""
    ids = sorted(coco_ground_truth(annotations).getCatIds())
    if len(ids) != 80:
        raise InputError(f"{annotations} has {len(ids)} categories; the COCO models predict 80")
    return ids


def coco_average_precision(annotations: Path, image_ids: list[int], results: list[dict],
                           iou_type: str) -> dict[str, float]:
    """mAP@[.5:.95] and mAP@.5 (percent) over `image_ids`, with pycocotools."""
    from pycocotools.cocoeval import COCOeval

    ground_truth = coco_ground_truth(annotations)
    if not results:  # pycocotools cannot load an empty result list; nothing detected scores zero
        return {"map": 0.0, "map50": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        detections = ground_truth.loadRes(results)
        evaluator = COCOeval(ground_truth, detections, iou_type)
        evaluator.params.imgIds = sorted(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {"map": float(evaluator.stats[0]) * 100, "map50": float(evaluator.stats[1]) * 100}
