"""Region finders: where in an image the objects of a task are (DISCOVER's grounding step).

Each finder turns an image into labelled boxes in pixels; a task profile picks finders and the
labels it cares about. Boxes then go onto the latent grid with a margin (`region_grid_boxes`).

| type    | model                                              | labels                  |
|---------|----------------------------------------------------|-------------------------|
| objects | YOLOX-nano, COCO (model directory)                 | the 80 COCO classes     |
| faces   | YuNet (model directory, OpenCV)                    | face                    |
| text    | PP-OCR text detector shipped in `rapidocr` (PyPI)  | text                    |
| salient | EfficientNet-Lite0 class activation map (built in) | the top ImageNet class  |
| boxes   | none: boxes the user supplies (JSON)               | any                     |
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from PIL import Image

from versacodec.errors import InputError
from versacodec.paths import model_availability
from versacodec.semantics.profiles import FINDERS, FinderSpec, TaskProfile


@dataclass(frozen=True)
class Region:
    label: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the original image
    score: float = 1.0


class Finder:
    """Base class: `vocabulary()` (None: open), `available()` and `find()`. Each finder is offered
    by its `type` in `profiles.FINDERS`."""

    type: ClassVar[str]

    @classmethod
    def vocabulary(cls) -> frozenset[str] | None:
        return None

    def available(self) -> tuple[bool, str]:
        return True, ""

    def find(self, image: Image.Image, spec: FinderSpec) -> list[Region]:
        raise NotImplementedError


def _keep(regions: list[Region], spec: FinderSpec) -> list[Region]:
    return [r for r in regions if r.score >= spec.min_score and (not spec.labels or r.label in spec.labels)]


class ObjectFinder(Finder):
    type = "objects"

    @classmethod
    def vocabulary(cls) -> frozenset[str] | None:
        from versacodec.semantics.detectors import coco_class_names

        names = coco_class_names()
        return None if names is None else frozenset(names)

    def available(self) -> tuple[bool, str]:
        from versacodec.semantics.detectors import COCO_LABELS, YOLOX_MODEL

        return model_availability(YOLOX_MODEL, COCO_LABELS)

    def find(self, image: Image.Image, spec: FinderSpec) -> list[Region]:
        from versacodec.semantics.detectors import YoloxDetector, coco_class_names

        names = coco_class_names()
        boxes = YoloxDetector(confidence=spec.min_score, nms_iou=0.45, max_detections=100).predict(image)
        return _keep([Region(names[int(c)], (x, y, x + w, y + h), s) for x, y, w, h, s, c in boxes], spec)


class FaceFinder(Finder):
    type = "faces"

    @classmethod
    def vocabulary(cls) -> frozenset[str] | None:
        return frozenset({"face"})

    def available(self) -> tuple[bool, str]:
        from versacodec.semantics.detectors import YUNET_MODEL

        return model_availability(YUNET_MODEL)

    def find(self, image: Image.Image, spec: FinderSpec) -> list[Region]:
        from versacodec.semantics.detectors import YunetFaceDetector

        faces = YunetFaceDetector(score_threshold=spec.min_score).predict(image)
        return _keep([Region("face", (f[0], f[1], f[0] + f[2], f[1] + f[3]), f[-1]) for f in faces], spec)


@cache
def _text_engine():
    from rapidocr import RapidOCR

    return RapidOCR(params={"Global.use_cls": False, "Global.use_rec": False, "Global.log_level": "error"})


class TextFinder(Finder):
    type = "text"

    @classmethod
    def vocabulary(cls) -> frozenset[str] | None:
        return frozenset({"text"})

    def available(self) -> tuple[bool, str]:
        try:
            import rapidocr  # noqa: F401
        except ImportError:
            return False, "text regions need the rapidocr package (pip install rapidocr)"
        return True, ""

    def find(self, image: Image.Image, spec: FinderSpec) -> list[Region]:
        result = _text_engine()(np.asarray(image.convert("RGB")), use_det=True, use_cls=False, use_rec=False)
        boxes = getattr(result, "boxes", None)
        scores = getattr(result, "scores", None) or [1.0] * (0 if boxes is None else len(boxes))
        if boxes is None:
            return []
        regions = []
        for quad, score in zip(boxes, scores, strict=False):
            quad = np.asarray(quad, dtype=np.float64).reshape(-1, 2)
            x0, y0 = quad.min(0)
            x1, y1 = quad.max(0)
            regions.append(Region("text", (float(x0), float(y0), float(x1), float(y1)), float(score)))
        return _keep(regions, spec)


class SalientFinder(Finder):
    """The image classifier's class activation map for its top class, thresholded at `min_score`
    of its maximum; one box per connected blob. Needs only the packaged classifier."""

    type = "salient"
    SHORT_SIDE = 320

    @torch.inference_mode()
    def find(self, image: Image.Image, spec: FinderSpec) -> list[Region]:
        from scipy import ndimage

        from versacodec.semantics.classifier import load_efficientnet_lite0
        from versacodec.semantics.tagger import class_names

        model, _ = load_efficientnet_lite0()
        rgb = image.convert("RGB")
        scale = self.SHORT_SIDE / min(rgb.size)
        size = (max(32, round(rgb.width * scale)), max(32, round(rgb.height * scale)))
        array = (np.asarray(rgb.resize(size, Image.Resampling.BICUBIC), dtype=np.float32) - 127.0) / 128.0
        features = model.extract_features(torch.from_numpy(array.transpose(2, 0, 1).copy())[None])[0]
        logits = model._fc(features.mean((1, 2)))
        top = int(logits.argmax())
        cam = torch.relu(torch.einsum("c,chw->hw", model._fc.weight[top], features)).numpy()
        if cam.max() <= 0:
            return []
        blobs, count = ndimage.label(cam >= spec.min_score * cam.max())
        cell_x, cell_y = rgb.width / cam.shape[1], rgb.height / cam.shape[0]
        regions = []
        for index, window in enumerate(ndimage.find_objects(blobs)[:count]):
            rows, cols = window
            score = float(cam[blobs == index + 1].max() / cam.max())
            regions.append(Region(class_names()[top], (cols.start * cell_x, rows.start * cell_y,
                                                       cols.stop * cell_x, rows.stop * cell_y), score))
        return regions


class BoxesFinder(Finder):
    """Regions given by the user: `find_regions(..., boxes=...)` (`EncodeOptions.boxes`)."""

    type = "boxes"

    def find(self, image: Image.Image, spec: FinderSpec) -> list[Region]:
        raise InputError("the 'boxes' finder needs boxes from the user", options=("boxes",))


def load_boxes(path: str | Path) -> list[Region]:
    """User boxes from JSON: [{"label": "sign", "box": [x0, y0, x1, y1]}, ...] in pixels."""
    try:
        entries = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read boxes from {path}: {exc}") from exc
    if not isinstance(entries, list):
        raise InputError(f"{path}: expected a JSON list of {{'label', 'box'}} objects")
    regions = []
    for index, entry in enumerate(entries):
        box = entry.get("box") if isinstance(entry, dict) else None
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, int | float) and math.isfinite(v) for v in box)):
            raise InputError(f"{path}: box {index + 1} needs 'box': [x0, y0, x1, y1] in pixels")
        regions.append(Region(str(entry.get("label", "region")), tuple(float(v) for v in box)))
    return regions


def check_boxes(regions: list[Region], width: int, height: int) -> None:
    for region in regions:
        x0, y0, x1, y1 = region.box
        if not (x0 < x1 and y0 < y1):
            raise InputError(f"box {list(region.box)} ({region.label}) is empty or inverted")
        if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
            raise InputError(f"box {list(region.box)} ({region.label}) lies outside the {width}x{height} image")


def find_regions(profile: TaskProfile, image: Image.Image, boxes: list[Region] | None = None) -> list[Region]:
    """Every region the profile's finders report (user `boxes` serve the 'boxes' finder)."""
    regions: list[Region] = []
    for spec in profile.finders:
        if spec.type == "boxes":
            if boxes is None:
                raise InputError(f"task {profile.name!r} takes its regions from user boxes (a JSON file of "
                                 '[{"label": ..., "box": [x0, y0, x1, y1]}, ...] in pixels)', options=("boxes",))
            check_boxes(boxes, image.width, image.height)
            regions += [b for b in boxes if not spec.labels or b.label in spec.labels]
            continue
        finder = FINDERS[spec.type]()
        ready, reason = finder.available()
        if not ready:
            raise InputError(f"task {profile.name!r} cannot find its regions: {reason}")
        regions += finder.find(image, spec)
    return regions


def region_grid_boxes(regions: list[Region], margin: int, cell: int, grid: tuple[int, int]
                      ) -> list[tuple[str, int, int, int, int]]:
    """Pixel boxes → (label, x0, y0, x1, y1) on a grid of `cell`-pixel cells, grown by `margin`
    pixels and clipped to the grid (end exclusive)."""
    rows, cols = grid
    out = []
    for region in regions:
        x0, y0, x1, y1 = region.box
        gx0 = max(0, math.floor((x0 - margin) / cell))
        gy0 = max(0, math.floor((y0 - margin) / cell))
        gx1 = min(cols, math.ceil((x1 + margin) / cell))
        gy1 = min(rows, math.ceil((y1 + margin) / cell))
        if gx0 < gx1 and gy0 < gy1:
            out.append((region.label, gx0, gy0, gx1, gy1))
    return out
