"""Latents (and tags) of the training pool, computed once and reused by every later stage.

Each image contributes its latent, the latent of its mirror image, and (for large photos) the
latent at half size. The cache file name carries a hash of the autoencoder weights and of the
image list, so a retrained autoencoder never reuses stale latents. Tags (the encoder-side
tagger's class ids for the whole image) depend only on the images and are cached separately.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from versacodec.latent_space.autoencoder import Autoencoder
from versacodec.modeling import WEIGHTS_NAME, file_sha256
from versacodec.training.data import load_rgb_uint8


class CachedLatents(NamedTuple):
    latents: list[torch.Tensor]  # normalised, float16, (C, h, w) each
    sources: list[int]  # index into the file list each latent came from


def _listing_hash(files: list[Path]) -> str:
    return hashlib.sha256("\n".join(str(p) for p in files).encode()).hexdigest()[:8]


def cache_path(cache_dir: Path, autoencoder_dir: Path, files: list[Path]) -> Path:
    weights = file_sha256(autoencoder_dir / WEIGHTS_NAME)[:12]
    return cache_dir / f"latents-{weights}-{_listing_hash(files)}.pt"


def _variants(image: torch.Tensor) -> list[torch.Tensor]:
    pixels = image.float().div(255)[None]
    out = [pixels, pixels.flip(-1)]
    if min(pixels.shape[-2:]) >= 512:
        out.append(F.interpolate(pixels, scale_factor=0.5, mode="area"))
    return out


@torch.no_grad()
def build_latent_cache(autoencoder_dir: Path, files: list[Path], cache_dir: Path,
                       progress: bool = True) -> CachedLatents:
    """Latents for every file and variant; computed once, then read from disk."""
    path = cache_path(cache_dir, autoencoder_dir, files)
    if path.exists():
        stored = torch.load(path, weights_only=True)
        return CachedLatents(stored["latents"], stored["sources"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    autoencoder = Autoencoder.from_pretrained(autoencoder_dir).to(device)
    latents, sources = [], []
    for index, file in enumerate(tqdm(files, desc="caching latents", disable=not progress)):
        for pixels in _variants(load_rgb_uint8(file)):
            height, width = (s - s % 8 for s in pixels.shape[-2:])
            latents.append(autoencoder.encode(pixels[..., :height, :width].to(device))[0].half().cpu())
            sources.append(index)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"latents": latents, "sources": sources}, tmp)
    tmp.replace(path)
    return CachedLatents(latents, sources)


def build_tag_cache(files: list[Path], cache_dir: Path, progress: bool = True) -> list[list[int]]:
    """The default tagger's class ids for every file (what the encoder would transmit)."""
    from PIL import Image

    from versacodec.semantics.tagger import ClassifierTagger

    path = cache_dir / f"tags-{_listing_hash(files)}.json"
    if path.exists():
        return json.loads(path.read_text())
    tagger = ClassifierTagger()
    tags = []
    for file in tqdm(files, desc="tagging", disable=not progress):
        with Image.open(file) as image:
            tags.append(tagger(image.convert("RGB")))
    cache_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tags))
    return tags


class LatentCropSampler:
    """Random square crops of cached latents; batch `step` is a pure function of (seed, step, rank)."""

    def __init__(self, cached: CachedLatents, crop: int, seed: int, rank: int = 0) -> None:
        keep = [i for i, lat in enumerate(cached.latents) if min(lat.shape[-2:]) >= crop]
        self.latents = [cached.latents[i] for i in keep]
        self.sources = [cached.sources[i] for i in keep]
        if not self.latents:
            raise ValueError(f"no cached latent is at least {crop} on its short side")
        self.crop, self.seed, self.rank = crop, seed, rank

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, list[int]]:
        """(B, C, crop, crop) float32 latents and the source file index of each."""
        seed = int(np.random.SeedSequence([self.seed, step, self.rank]).generate_state(1)[0])
        generator = torch.Generator().manual_seed(seed)
        crops, sources = [], []
        for _ in range(batch_size):
            index = int(torch.randint(len(self.latents), (1,), generator=generator))
            latent = self.latents[index]
            top = int(torch.randint(latent.shape[1] - self.crop + 1, (1,), generator=generator))
            left = int(torch.randint(latent.shape[2] - self.crop + 1, (1,), generator=generator))
            crops.append(latent[:, top : top + self.crop, left : left + self.crop].float())
            sources.append(self.sources[index])
        return torch.stack(crops), sources
