"""Face detection and landmark stability: YuNet (OpenCV FaceDetectorYN) on the decoded image
against its detections on the original.

A face counts as kept when a
decoded detection overlaps it with IoU ≥ 0.5 (greedy, most confident reference first); its
landmark error is the mean distance of the 5 points over sqrt(reference box area), reported in
percent of that face size.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import ClassVar

import numpy as np
from PIL import Image

from versacodec.evaluation.datasets import Dataset, DatasetItem
from versacodec.evaluation.tasks.base import Task
from versacodec.semantics.detectors import YUNET_MODEL as MODEL
from versacodec.semantics.detectors import YunetFaceDetector, box_iou

SCORE_THRESHOLD = 0.6
NMS_IOU = 0.3
MATCH_IOU = 0.5


class Faces(Task):
    name = "faces"
    description = "face recall and landmark error vs the original's detections (YuNet 640)"
    metrics: ClassVar[dict[str, bool]] = {"recall": True, "landmark-error": False}
    uses_reference = True
    per_image_keys = ("reference_faces", "detected_faces", "matched")

    packages: ClassVar[dict[str, str]] = {"cv2": "opencv-python-headless"}
    model_file = MODEL

    def available(self) -> tuple[bool, str]:
        ok, reason = super().available()
        if not ok:
            return ok, reason
        import cv2

        if not hasattr(cv2, "FaceDetectorYN"):
            return False, f"OpenCV {cv2.__version__} has no FaceDetectorYN (needs 4.x with the dnn module)"
        return True, ""

    @cached_property
    def _detector(self) -> YunetFaceDetector:
        return YunetFaceDetector(SCORE_THRESHOLD, NMS_IOU)

    def predict(self, image: Image.Image) -> list[list[float]]:
        """Faces as [x, y, w, h, 5 landmark (x, y) pairs, score] in original pixels, best first."""
        return self._detector.predict(image)

    def record(self, item: DatasetItem, prediction: list[list[float]] | None,
               reference: list[list[float]]) -> dict:
        found = np.asarray(prediction or [], dtype=np.float64).reshape(-1, 15)
        corners = np.concatenate([found[:, :2], found[:, :2] + found[:, 2:4]], 1)
        unused = np.ones(len(found), dtype=bool)
        matched, error = 0, 0.0
        for face in np.asarray(reference, dtype=np.float64).reshape(-1, 15):
            if not unused.any():
                break
            overlaps = np.where(unused, box_iou(np.r_[face[:2], face[:2] + face[2:4]], corners), -1.0)
            best = int(overlaps.argmax())
            if overlaps[best] < MATCH_IOU:
                continue
            unused[best] = False
            matched += 1
            distances = np.linalg.norm(found[best, 4:14].reshape(5, 2) - face[4:14].reshape(5, 2), axis=1)
            error += float(distances.mean() / np.sqrt(max(face[2] * face[3], 1e-6)))
        return {"reference_faces": len(reference), "detected_faces": len(found), "matched": matched,
                "landmark_error_sum": error}

    def score(self, dataset: Dataset, records: Mapping[str, dict]) -> dict[str, float]:
        faces = sum(r["reference_faces"] for r in records.values())
        matched = sum(r["matched"] for r in records.values())
        error = sum(r["landmark_error_sum"] for r in records.values())
        return {"recall": 100.0 * matched / faces if faces else float("nan"),
                "landmark-error": 100.0 * error / matched if matched else float("nan")}
