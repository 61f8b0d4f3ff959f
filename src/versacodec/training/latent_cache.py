"""Latents (and tags) of the training pool, computed once and reused by every later stage.

Each image contributes its latent, the latent of its mirror image, and (for large photos) the
latent at half size. A `CacheVariants` with a crop side keeps, of each of those, one window of at
most that side at a position drawn per image (a costly encoder, TAEF2 at full resolution, then
spends its time on many images rather than on the whole of a few), and may leave the mirror
images out.

The cache is one file per image, named by the image's content, in a folder named by the latent
space's weights and the variants: a retrained autoencoder never reuses stale latents, an
interrupted build (hours for TAEF2 on a CPU) resumes where it stopped, and a grown or re-laid-out
pool encodes only its new images. Tags (the encoder-side tagger's class ids for the whole image)
depend only on the images and are cached separately.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from versacodec.fileio import WEIGHTS_NAME, file_sha256
from versacodec.latent_space.registry import load_latent_space_folder
from versacodec.training.data import load_rgb_uint8


class CachedLatents(NamedTuple):
    latents: list[torch.Tensor]  # normalised, float16, (C, h, w) each
    sources: list[int]  # index into the file list each latent came from


def _listing_hash(files: list[Path]) -> str:
    return hashlib.sha256("\n".join(str(p) for p in files).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class CacheVariants:
    """What each training image contributes to the cache (see the module docstring)."""

    crop: int | None = None  # pixels; None: the whole image
    flips: bool = True
    seed: int = 0

    def tag(self) -> str:
        """The file-name part that tells caches of other variants apart ('' for the original policy)."""
        return "" if self == CacheVariants() else f"-c{self.crop}{'f' if self.flips else ''}s{self.seed}"

    def of(self, image: torch.Tensor, key: int) -> list[torch.Tensor]:
        """The variants of one image; `key` (the image's own, not its place in a list) draws the windows."""
        pixels = image.float().div(255)[None]
        out = [pixels, pixels.flip(-1)] if self.flips else [pixels]
        if min(pixels.shape[-2:]) >= 512:
            out.append(F.interpolate(pixels, scale_factor=0.5, mode="area"))
        if self.crop is None:
            return out
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + key)
        return [self._window(variant, generator) for variant in out]

    def _window(self, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        height, width = (min(side, self.crop) for side in pixels.shape[-2:])
        top = int(torch.randint(pixels.shape[-2] - height + 1, (1,), generator=generator))
        left = int(torch.randint(pixels.shape[-1] - width + 1, (1,), generator=generator))
        return pixels[..., top : top + height, left : left + width]


WHOLE_IMAGES = CacheVariants()  # the policy of every model before v5


def entry_name(file: Path) -> str:
    """A file's entry in a cache folder: its content hash, so moved or renamed files still match."""
    return file_sha256(file)[:24]


def window_key(entry: str) -> int:
    """The key `CacheVariants.of` draws an image's windows with, from its entry name."""
    return int(entry[:12], 16)


def cache_folder(cache_dir: Path, autoencoder_dir: Path, variants: CacheVariants = WHOLE_IMAGES) -> Path:
    weights = file_sha256(autoencoder_dir / WEIGHTS_NAME)[:12]
    return cache_dir / f"latents-{weights}{variants.tag()}"


@torch.no_grad()
def build_latent_cache(autoencoder_dir: Path, files: list[Path], cache_dir: Path, progress: bool = True,
                       variants: CacheVariants = WHOLE_IMAGES) -> CachedLatents:
    """Latents for every file and variant; each image's computed once, then read from disk.
    `autoencoder_dir` is any latent space's folder in versacodec's format."""
    folder = cache_folder(cache_dir, autoencoder_dir, variants)
    entries = [folder / f"{entry_name(file)}.pt" for file in files]
    missing = [(file, entry) for file, entry in zip(files, entries, strict=True) if not entry.exists()]
    if missing:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        autoencoder = load_latent_space_folder(autoencoder_dir).to(device)
        folder.mkdir(parents=True, exist_ok=True)
        for file, entry in tqdm(missing, desc="caching latents", disable=not progress):
            encoded = []
            for pixels in variants.of(load_rgb_uint8(file), window_key(entry.stem)):
                height, width = (s - s % autoencoder.factor for s in pixels.shape[-2:])
                encoded.append(autoencoder.encode(pixels[..., :height, :width].to(device))[0].half().cpu())
            tmp = entry.with_suffix(".tmp")
            torch.save(encoded, tmp)
            tmp.replace(entry)
    latents, sources = [], []
    for index, entry in enumerate(entries):
        stored = torch.load(entry, weights_only=True)
        latents += stored
        sources += [index] * len(stored)
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
