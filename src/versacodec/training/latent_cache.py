"""Latents of the training pool, computed once per autoencoder and reused by every later stage.

Each image contributes its latent, the latent of its mirror image, and (for large photos) the
latent at half size. The cache file name carries a hash of the autoencoder weights and of the
image list, so a retrained autoencoder never reuses stale latents.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from versacodec.latent_space.autoencoder import Autoencoder
from versacodec.modeling import WEIGHTS_NAME, file_sha256
from versacodec.training.data import load_rgb_uint8


def cache_path(cache_dir: Path, autoencoder_dir: Path, files: list[Path]) -> Path:
    listing = hashlib.sha256("\n".join(str(p) for p in files).encode()).hexdigest()[:8]
    weights = file_sha256(autoencoder_dir / WEIGHTS_NAME)[:12]
    return cache_dir / f"latents-{weights}-{listing}.pt"


def _variants(image: torch.Tensor) -> list[torch.Tensor]:
    pixels = image.float().div(255)[None]
    out = [pixels, pixels.flip(-1)]
    if min(pixels.shape[-2:]) >= 512:
        out.append(F.interpolate(pixels, scale_factor=0.5, mode="area"))
    return out


@torch.no_grad()
def build_latent_cache(autoencoder_dir: Path, files: list[Path], cache_dir: Path,
                       progress: bool = True) -> list[torch.Tensor]:
    """Normalised latents (float16, (C, h, w) each) for every file and variant; cached on disk."""
    path = cache_path(cache_dir, autoencoder_dir, files)
    if path.exists():
        return torch.load(path, weights_only=True)
    autoencoder = Autoencoder.from_pretrained(autoencoder_dir)
    latents = []
    for file in tqdm(files, desc="caching latents", disable=not progress):
        for pixels in _variants(load_rgb_uint8(file)):
            height, width = (s - s % 8 for s in pixels.shape[-2:])
            latents.append(autoencoder.encode(pixels[..., :height, :width])[0].half())
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(latents, tmp)
    tmp.replace(path)
    return latents


class LatentCropSampler:
    """Random square crops of cached latents; batch `step` is a pure function of (seed, step, rank)."""

    def __init__(self, latents: list[torch.Tensor], crop: int, seed: int, rank: int = 0) -> None:
        self.latents = [lat for lat in latents if min(lat.shape[-2:]) >= crop]
        if not self.latents:
            raise ValueError(f"no cached latent is at least {crop} on its short side")
        self.crop, self.seed, self.rank = crop, seed, rank

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, list[int]]:
        """(B, C, crop, crop) float32 latents and the index of the latent each came from."""
        seed = int(np.random.SeedSequence([self.seed, step, self.rank]).generate_state(1)[0])
        generator = torch.Generator().manual_seed(seed)
        crops, sources = [], []
        for _ in range(batch_size):
            index = int(torch.randint(len(self.latents), (1,), generator=generator))
            latent = self.latents[index]
            top = int(torch.randint(latent.shape[1] - self.crop + 1, (1,), generator=generator))
            left = int(torch.randint(latent.shape[2] - self.crop + 1, (1,), generator=generator))
            crops.append(latent[:, top : top + self.crop, left : left + self.crop].float())
            sources.append(index)
        return torch.stack(crops), sources
