"""Face detection and landmark stability: YuNet (OpenCV FaceDetectorYN) on the decoded image
against its detections on the original.

The fixed-size YuNet file needs exactly 640×640 input (other sizes give wrong boxes), so images
are letterboxed to its top-left corner and detections scaled back. A face counts as kept when a
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
from versacodec.evaluation.tasks.common import box_iou, model_availability
from versacodec.paths import third_party_model

MODEL = "face/yunet_n_640_640.onnx"
INPUT_SIZE = 640
SCORE_THRESHOLD = 0.6
NMS_IOU = 0.3
MATCH_IOU = 0.5


class Faces(Task):
    name = "faces"
    description = "face recall and landmark error vs the original's detections (YuNet 640)"
    metrics: ClassVar[dict[str, bool]] = {"recall": True, "landmark-error": False}
    uses_reference = True
    per_image_keys = ("reference_faces", "detected_faces", "matched")

    def available(self) -> tuple[bool, str]:
        try:
            import cv2
        except ImportError:
            return False, "opencv-python-headless is not installed (pip install 'versacodec[eval]')"
        if not hasattr(cv2, "FaceDetectorYN"):
            return False, f"OpenCV {cv2.__version__} has no FaceDetectorYN (needs 4.x with the dnn module)"
        return model_availability(MODEL)

    @cached_property
    def _detector(self):
        import cv2

        return cv2.FaceDetectorYN.create(str(third_party_model(MODEL)), "", (INPUT_SIZE, INPUT_SIZE),
                                         SCORE_THRESHOLD, NMS_IOU, 5000)

    def predict(self, image: Image.Image) -> list[list[float]]:
        """Faces as [x, y, w, h, 5 landmark (x, y) pairs, score] in original pixels, best first."""
        import cv2

        rgb = np.asarray(image.convert("RGB"))
        scale = INPUT_SIZE / max(rgb.shape[:2])
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
        canvas[: size[1], : size[0]] = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)[:, :, ::-1]
        _, faces = self._detector.detect(canvas)
        if faces is None:
            return []
        faces = faces[np.argsort(-faces[:, 14])]
        faces[:, :14] /= scale
        return [[round(float(v), 2) for v in face[:14]] + [round(float(face[14]), 4)] for face in faces]

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
