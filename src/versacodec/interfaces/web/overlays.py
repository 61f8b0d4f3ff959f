"""Machine-task overlays for the comparison page: detection boxes (YOLOX-nano) and faces (YuNet).

The model runners are the ones the evaluation's task metrics and the encoder's region finders use
(`versacodec.semantics.detectors`), so the page shows what those measure. A missing model file or
package skips that overlay with its reason, shown on the page; nothing is downloaded.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cached_property

from PIL import Image

from versacodec.paths import model_availability
from versacodec.semantics.detectors import (
    YOLOX_MODEL,
    YUNET_MODEL,
    YoloxDetector,
    YunetFaceDetector,
    coco_class_names,
)

# The evaluation keeps boxes down to score 0.01 for mAP; a picture with hundreds of faint boxes
# says nothing, so the page draws only confident ones.
DETECTION_SCORE = 0.3
DETECTION_NMS_IOU = 0.65
MAX_DETECTIONS = 100
@dataclass(frozen=True)
class OverlayStatus:
    name: str
    available: bool
    reason: str  # why it is skipped; empty when available


def _availability(model: str, *modules: str) -> tuple[bool, str]:
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            return False, f"{module} is not installed (pip install 'versacodec[eval]')"
    return model_availability(model)


class Overlays:
    """Runs the available overlay models on images; one instance per server (models load once)."""

    @cached_property
    def status(self) -> list[OverlayStatus]:
        return [OverlayStatus("detection", *_availability(YOLOX_MODEL, "onnxruntime", "cv2")),
                OverlayStatus("faces", *_availability(YUNET_MODEL, "cv2"))]

    @property
    def any_available(self) -> bool:
        return any(status.available for status in self.status)

    @cached_property
    def _detector(self) -> YoloxDetector:
        return YoloxDetector(DETECTION_SCORE, DETECTION_NMS_IOU, MAX_DETECTIONS)

    @cached_property
    def _face_detector(self) -> YunetFaceDetector:
        return YunetFaceDetector()

    def annotate(self, image: Image.Image) -> dict[str, list[dict]]:
        """Overlay shapes in image pixels: {"detection": [{box, score, label}], "faces": [{box, score,
        landmarks}]}, with only the available overlays present."""
        available = {status.name for status in self.status if status.available}
        found: dict[str, list[dict]] = {}
        if "detection" in available:
            found["detection"] = _detections(self._detector.predict(image))
        if "faces" in available:
            found["faces"] = _faces(self._face_detector.predict(image))
        return found


def _detections(boxes: list[list[float]]) -> list[dict]:
    names = coco_class_names()
    return [{"box": box[:4], "score": box[4],
             "label": names[int(box[5])] if names else f"class {int(box[5])}"}
            for box in boxes]


def _faces(faces: list[list[float]]) -> list[dict]:
    return [{"box": face[:4], "score": face[14], "landmarks": [face[4:14][i : i + 2] for i in range(0, 10, 2)]}
            for face in faces]
