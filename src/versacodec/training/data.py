"""Training images held in memory and sampled as random crops.

Batch `step` is a pure function of (seed, step, rank), so a resumed run sees exactly the batches
it would have seen, and each accelerate process sees different ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from versacodec.errors import InputError
from versacodec.paths import data_dir

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def list_images(root: Path) -> list[Path]:
    if not root.is_dir():
        raise InputError(f"image folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"no images under {root}")
    return files


def training_root(configured: str | None) -> Path:
    if configured:
        return Path(configured)
    root = data_dir()
    if root is None:
        raise InputError("no training data: set data_dir in the config or VERSACODEC_DATA")
    return root / "train"


def load_rgb_uint8(path: Path) -> torch.Tensor:
    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    return torch.from_numpy(array).permute(2, 0, 1)


class CropSampler:
    """Random crops (with flips and mild downscaling of large photos) from in-memory images."""

    def __init__(self, files: list[Path], crop_size: int, seed: int, rank: int = 0) -> None:
        self.crop_size, self.seed, self.rank = crop_size, seed, rank
        self.images = [load_rgb_uint8(p) for p in files]
        self.images = [im for im in self.images if min(im.shape[1:]) >= crop_size]
        if not self.images:
            raise InputError(f"no training image is at least {crop_size} pixels on its short side")

    def batch(self, step: int, batch_size: int) -> torch.Tensor:
        seed = int(np.random.SeedSequence([self.seed, step, self.rank]).generate_state(1)[0])
        generator = torch.Generator().manual_seed(seed)
        return torch.stack([self._crop(generator) for _ in range(batch_size)])

    def _crop(self, generator: torch.Generator) -> torch.Tensor:
        image = self.images[int(torch.randint(len(self.images), (1,), generator=generator))]
        size = self.crop_size
        short = min(image.shape[1:])
        # Large photos are sometimes shown at a smaller scale so crops span more content.
        max_shrink = min(2.0, short / size)
        scale = 1.0 / (1.0 + float(torch.rand((), generator=generator)) * (max_shrink - 1.0))
        window = min(short, round(size / scale))
        top = int(torch.randint(image.shape[1] - window + 1, (1,), generator=generator))
        left = int(torch.randint(image.shape[2] - window + 1, (1,), generator=generator))
        crop = image[:, top : top + window, left : left + window].float().div(255)
        if window != size:
            crop = F.interpolate(crop[None], size=(size, size), mode="area")[0]
        if bool(torch.rand((), generator=generator) < 0.5):
            crop = crop.flip(-1)
        return crop.clamp(0, 1)


def split_train_validation(files: list[Path], validation_images: int) -> tuple[list[Path], list[Path]]:
    """A fixed, spread-out subset of the pool is held out for validation."""
    if validation_images <= 0:
        return files, []
    stride = max(1, len(files) // validation_images)
    held = set(files[::stride][:validation_images])
    return [f for f in files if f not in held], sorted(held)
