"""Evaluation image sets: plain folders (Kodak, CLIC), COCO detection/segmentation sets,
ImageNet-style classification sets and face sets.

Named sets resolve inside the data directory (`versacodec.paths.data_dir()`: $VERSACODEC_DATA or
../shared/data); any folder path works too, its kind detected from its contents. A named set that
is missing raises `DatasetMissing` (an `InputError`) whose message says where it looked, so a
multi-set run can skip it and say why.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from versacodec.errors import InputError
from versacodec.paths import DATA_VARIABLE, data_dir

Kind = Literal["images", "coco", "imagenet", "faces"]
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm")
COCO_ANNOTATIONS = "instances_val2017.json"
IMAGENET_LABELS = "labels.csv"


@dataclass(frozen=True)
class NamedSet:
    folder: str
    kind: Kind
    subset: int | None = None  # ImageNet rule: this many rows drawn with seed 0 (docs/baselines.md)


# Folder names inside the data directory.
NAMED_SETS: dict[str, NamedSet] = {
    "kodak": NamedSet("kodak", "images"),
    "clic": NamedSet("clic", "images"),
    "coco": NamedSet("coco-val-mini", "coco"),
    "imagenet": NamedSet("imagenet-eval", "imagenet", subset=200),
    "celeba": NamedSet("celeba-hq", "faces"),
}


class DatasetMissing(InputError):
    """A named dataset is not present in the data directory."""


@dataclass(frozen=True)
class DatasetItem:
    id: str  # stable key for caches and reports: the file stem
    path: Path
    label: int | None = None  # ImageNet class index 0-999
    coco_id: int | None = None


@dataclass
class Dataset:
    name: str
    kind: Kind
    root: Path
    items: list[DatasetItem]
    annotations: Path | None = None  # COCO instances JSON
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def key(self) -> str:
        """Cache key: the name plus a hash of the folder, so two folders named alike never mix."""
        return f"{self.name}-{hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:8]}"

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "path": shown_path(self.root), "images": len(self.items),
                "annotations": None if self.annotations is None else shown_path(self.annotations),
                "notes": self.notes}


def shown_path(path: Path) -> str:
    """A path as reports record it: under the data directory as $VERSACODEC_DATA/..., so that results
    made here and committed hold no path of this machine."""
    base = data_dir()
    if base is not None:
        try:
            return f"${DATA_VARIABLE}/{path.resolve().relative_to(base.resolve()).as_posix()}"
        except ValueError:
            pass
    return str(path)


def load_image(path: Path) -> Image.Image:
    """An 8-bit RGB PIL image (EXIF orientation applied, other modes converted), as codecs receive it."""
    from versacodec.imaging import open_image, to_pil
    from versacodec.limits import DEFAULT_MAX_PIXELS

    return to_pil(open_image(path, DEFAULT_MAX_PIXELS).pixels)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _folder_items(folder: Path) -> list[DatasetItem]:
    return [DatasetItem(p.stem, p) for p in _image_files(folder)]


def _coco(name: str, root: Path) -> Dataset:
    annotations = next(iter(sorted(root.glob("instances*.json"))), None)
    if annotations is None:
        raise InputError(f"{root} has no instances*.json COCO annotation file")
    images_dir = root / "images" if (root / "images").is_dir() else root
    try:
        listing = json.loads(annotations.read_text())["images"]
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{annotations} is not a COCO instances file: {exc}") from exc
    items, missing = [], 0
    for record in sorted(listing, key=lambda r: r["file_name"]):
        path = images_dir / record["file_name"]
        if path.is_file():
            items.append(DatasetItem(path.stem, path, coco_id=int(record["id"])))
        else:
            missing += 1
    notes = [f"{missing} images listed in {annotations.name} are absent and were left out"] if missing else []
    return Dataset(name, "coco", root, items, annotations, notes)


def _imagenet(name: str, root: Path, subset: int | None) -> Dataset:
    labels = root / IMAGENET_LABELS
    try:
        with labels.open(newline="") as handle:
            rows = sorted(csv.DictReader(handle), key=lambda r: r["file"])
        items = [DatasetItem(Path(r["file"]).stem, root / r["file"], label=int(r["class_index"])) for r in rows]
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{labels} must be a CSV with columns file, wnid, class_index, class_name: {exc}") from exc
    notes = []
    if subset is not None and subset < len(items):
        chosen = np.random.default_rng(0).choice(len(items), subset, replace=False)
        items = [items[i] for i in sorted(chosen)]
        notes.append(f"{subset} of {len(rows)} images: np.random.default_rng(0).choice({len(rows)}, {subset}, "
                     "replace=False) over labels.csv rows sorted by file")
    absent = [item.path.name for item in items if not item.path.is_file()]
    if absent:
        raise InputError(f"{labels} lists {len(absent)} missing files, e.g. {absent[0]}")
    return Dataset(name, "imagenet", root, items, notes=notes)


def detect_kind(root: Path) -> Kind:
    if any(root.glob("instances*.json")):
        return "coco"
    if (root / IMAGENET_LABELS).is_file():
        return "imagenet"
    return "images"


def open_dataset(name_or_path: str, limit: int | None = None) -> Dataset:
    """A named set (kodak, clic, coco, imagenet, celeba) or a folder; `limit` keeps the first N images."""
    named = NAMED_SETS.get(name_or_path)
    if named is not None:
        base = data_dir()
        root = None if base is None else base / named.folder
        if root is None or not root.is_dir():
            where = "no data directory found" if base is None else f"{root} does not exist"
            raise DatasetMissing(f"dataset '{name_or_path}' is not available: {where} "
                                 "(set VERSACODEC_DATA or pass a folder path)")
        kind, name, subset = named.kind, name_or_path, named.subset
    else:
        root = Path(name_or_path).expanduser()
        if not root.is_dir():
            known = ", ".join(NAMED_SETS)
            raise InputError(f"dataset '{name_or_path}' is neither a known name ({known}) nor a folder")
        kind, name, subset = detect_kind(root), root.name, None
    if kind == "coco":
        dataset = _coco(name, root)
    elif kind == "imagenet":
        dataset = _imagenet(name, root, subset)
    else:
        dataset = Dataset(name, kind, root, _folder_items(root))
    if not dataset.items:
        raise InputError(f"dataset '{name}' at {root} contains no images")
    if limit is not None:
        if limit < 1:
            raise InputError(f"limit must be at least 1, not {limit}", options=("limit",))
        dataset.items = dataset.items[:limit]
    return dataset
