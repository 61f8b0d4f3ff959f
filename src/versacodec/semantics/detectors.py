"""Model runners shared by the encoder's region finders and the evaluation's task metrics:
YOLOX-nano COCO detection (onnxruntime) and YuNet faces (OpenCV), with letterboxing and NMS.

Model files come from the configured model directory (`versacodec.paths`); callers check
`paths.model_availability(...)` first and skip with its message when a file is missing.
"""

from __future__ import annotations

from functools import cache, cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from versacodec.paths import third_party_model

YOLOX_MODEL = "detection/yolox_nano.onnx"
YOLOX_INPUT_SIZE = 416
YOLOX_STRIDES = (8, 16, 32)
YUNET_MODEL = "face/yunet_n_640_640.onnx"
YUNET_INPUT_SIZE = 640
LETTERBOX_FILL = 114  # the grey YOLO models were trained with
COCO_LABELS = "detection/coco_labels.txt"


def coco_class_names() -> tuple[str, ...] | None:
    """The 80 COCO class names in model output order, or None without the label file.

    The file lists the 90 category ids with "n/a" in the unused slots; model outputs follow the
    used ids in order."""
    path = third_party_model(COCO_LABELS)
    return None if path is None else _class_names(path)


@cache  # per file: a label file that appears later (another VERSACODEC_MODELS) is still found
def _class_names(path: Path) -> tuple[str, ...] | None:
    names = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    used = tuple(name for name in names if name and name != "n/a")
    return used if len(used) == 80 else None


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


def _grid() -> tuple[np.ndarray, np.ndarray]:
    """Cell offsets (x, y) and strides of YOLOX's 3549 anchors, in its output order."""
    cells, strides = [], []
    for stride in YOLOX_STRIDES:
        side = YOLOX_INPUT_SIZE // stride
        ys, xs = np.mgrid[0:side, 0:side]
        cells.append(np.stack([xs.ravel(), ys.ravel()], 1))
        strides.append(np.full((side * side, 1), stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strides).astype(np.float32)


class YoloxDetector:
    """YOLOX-nano: BGR 0-255 input letterboxed to the top-left of 416×416, score = objectness ×
    best class score, class-aware NMS."""

    def __init__(self, confidence: float, nms_iou: float, max_detections: int) -> None:
        self.confidence, self.nms_iou, self.max_detections = confidence, nms_iou, max_detections

    @cached_property
    def _session(self):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # parallelism comes from --workers
        return onnxruntime.InferenceSession(str(third_party_model(YOLOX_MODEL)), options,
                                            providers=["CPUExecutionProvider"])

    def predict(self, image: Image.Image) -> list[list[float]]:
        """Boxes as [x, y, width, height, score, class index 0-79] in original pixels."""
        canvas, scale, _ = letterbox(np.asarray(image.convert("RGB")), YOLOX_INPUT_SIZE, centre=False)
        bgr = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32)
        output = self._session.run(None, {"images": bgr})[0][0]
        cells, strides = _grid()
        centres = (output[:, :2] + cells) * strides
        sizes = np.exp(output[:, 2:4]) * strides
        classes = output[:, 5:].argmax(1)
        scores = output[:, 4] * output[np.arange(len(output)), 5 + classes]
        keep = scores >= self.confidence
        corners = np.concatenate([centres - sizes / 2, centres + sizes / 2], 1)[keep] / scale
        scores, classes = scores[keep], classes[keep]
        chosen = class_aware_nms(corners, scores, classes, self.nms_iou, self.max_detections)
        return [[round(float(x1), 2), round(float(y1), 2), round(float(x2 - x1), 2), round(float(y2 - y1), 2),
                 round(float(scores[i]), 5), int(classes[i])]
                for i, (x1, y1, x2, y2) in zip(chosen, corners[chosen], strict=True)]


class YunetFaceDetector:
    """YuNet faces. The fixed-size file needs exactly 640×640 input (other sizes give wrong boxes),
    so images are letterboxed to its top-left corner and detections scaled back."""

    def __init__(self, score_threshold: float = 0.6, nms_iou: float = 0.3) -> None:
        self.score_threshold, self.nms_iou = score_threshold, nms_iou

    @cached_property
    def _detector(self):
        import cv2

        return cv2.FaceDetectorYN.create(str(third_party_model(YUNET_MODEL)), "", (YUNET_INPUT_SIZE, YUNET_INPUT_SIZE),
                                         self.score_threshold, self.nms_iou, 5000)

    def predict(self, image: Image.Image) -> list[list[float]]:
        """Faces as [x, y, w, h, 5 landmark (x, y) pairs, score] in original pixels, best first."""
        import cv2

        rgb = np.asarray(image.convert("RGB"))
        scale = YUNET_INPUT_SIZE / max(rgb.shape[:2])
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        canvas = np.zeros((YUNET_INPUT_SIZE, YUNET_INPUT_SIZE, 3), dtype=np.uint8)
        canvas[: size[1], : size[0]] = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)[:, :, ::-1]
        _, faces = self._detector.detect(canvas)
        if faces is None:
            return []
        faces = faces[np.argsort(-faces[:, 14])]
        faces[:, :14] /= scale
        return [[round(float(v), 2) for v in face[:14]] + [round(float(face[14]), 4)] for face in faces]
