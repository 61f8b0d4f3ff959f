"""Pieces several task evaluators share: TFLite loading, COCO ground truth and scoring.

Model runners shared with the encoder (YOLOX, YuNet, letterboxing, NMS) live in
`versacodec.semantics.detectors`; model-file availability in `versacodec.paths`."""

from __future__ import annotations

import contextlib
import io
from functools import cache
from pathlib import Path

import numpy as np

from versacodec.errors import InputError


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


COCO_METRICS = ("map", "map50", "map_small", "map_medium", "map_large")


def coco_average_precision(annotations: Path, image_ids: list[int], results: list[dict],
                           iou_type: str) -> dict[str, float]:
    """mAP@[.5:.95], mAP@.5 and mAP@[.5:.95] of small / medium / large objects (COCO's areas below
    32², up to 96², above; percent) over `image_ids`, with pycocotools. A size with no ground truth
    among the images scores 0, not pycocotools' −1."""
    from pycocotools.cocoeval import COCOeval

    ground_truth = coco_ground_truth(annotations)
    if not results:  # pycocotools cannot load an empty result list; nothing detected scores zero
        return dict.fromkeys(COCO_METRICS, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        detections = ground_truth.loadRes(results)
        evaluator = COCOeval(ground_truth, detections, iou_type)
        evaluator.params.imgIds = sorted(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    # stats: 0 mAP, 1 mAP50, 2 mAP75, 3–5 mAP of small, medium, large objects
    picked = dict(zip(COCO_METRICS, (evaluator.stats[i] for i in (0, 1, 3, 4, 5)), strict=True))
    return {name: max(float(value), 0.0) * 100 for name, value in picked.items()}
