"""On-disk caches that make reruns cheap and interrupted runs resumable.

- `EncodeCache`: coded bytes keyed by (codec, version, setting, image hash). Rate searches re-read
  every trial from here, so a rerun (or a new target rate) re-encodes nothing it has seen.
- `ResultStore`: one JSON record per (dataset, codec, codec version, rate, image) with its metrics
  and task outputs; the runner skips work whose record already holds what was asked for. Keying by
  version keeps the records of every model evaluated under one codec name (`--model`) side by side.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from versacodec.fileio import atomic_write_bytes


def image_hash(image: Image.Image) -> str:
    """Content hash of the pixels (not the file), so re-saved copies share cache entries."""
    digest = hashlib.sha256(f"{image.mode}:{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def slug(text: str) -> str:
    """A filesystem-safe, readable rendering of a codec spec or setting."""
    return re.sub(r"[^A-Za-z0-9.=@+-]+", "_", text).strip("_") or "_"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


class EncodeCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, codec: str, version: str, image: str, setting: str) -> Path:
        return self.root / f"{slug(codec)}-{_short_hash(version)}" / image[:24] / f"{slug(setting)}.bin"

    def get(self, codec: str, version: str, image: str, setting: str) -> bytes | None:
        path = self._path(codec, version, image, setting)
        return path.read_bytes() if path.is_file() else None

    def put(self, codec: str, version: str, image: str, setting: str, data: bytes) -> None:
        path = self._path(codec, version, image, setting)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)


def rate_label(target_bpp: float | None) -> str:
    return "uncompressed" if target_bpp is None else f"{target_bpp:g}bpp"


class ResultStore:
    """Per-image records under ROOT/DATASET/CODEC-VERSIONHASH/RATE/IMAGE.json (features beside them as .npy)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, dataset: str, codec: str, version: str, target_bpp: float | None) -> Path:
        return self.root / slug(dataset) / f"{slug(codec)}-{_short_hash(version)}" / rate_label(target_bpp)

    def load(self, dataset: str, codec: str, version: str, target_bpp: float | None, image_id: str) -> dict | None:
        path = self.folder(dataset, codec, version, target_bpp) / f"{slug(image_id)}.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except ValueError:  # a record cut short by a crash is recomputed
            return None

    def save(self, dataset: str, codec: str, version: str, target_bpp: float | None, image_id: str,
             record: dict) -> None:
        folder = self.folder(dataset, codec, version, target_bpp)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / f"{slug(image_id)}.json", json.dumps(record, indent=1).encode())

    def features_path(self, dataset: str, codec: str, version: str, target_bpp: float | None, image_id: str) -> Path:
        return self.folder(dataset, codec, version, target_bpp) / f"{slug(image_id)}.inception.npy"

    def save_features(self, path: Path, features: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, features.astype(np.float32))
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())
