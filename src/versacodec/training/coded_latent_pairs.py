"""Training pairs for a pixel decoder of a costly latent space: image windows and the latent
codec's ẑ of their cached latents, coded afresh at a random rate level for every batch.

`generated_latents` makes pairs by compressing image crops through the whole model. With TAEF2
that costs a full-resolution encode per crop (about a second here), and the pairs are fixed at the
qualities drawn once. The latent cache (`latent_cache.py`) already holds TAEF2's latents of the
pool's image windows, and the windows are reproducible from the images. So a pair is a crop of a
cached latent, the same crop of its window's pixels, and the codec's ẑ of the latent crop at a
continuous rate level drawn per sample: the codec in eval mode rounds as coding does, so ẑ is what
a stream of that crop decodes to (up to the fixed-point grid, far below a pixel level).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from versacodec.latent_codec.model import LatentCodec
from versacodec.training.data import load_rgb_uint8
from versacodec.training.generated_latents import GeneratedPairs
from versacodec.training.latent_cache import CacheVariants, build_latent_cache, entry_name, window_key


class CodedLatentPairs:
    """Pairs drawn from the cached latents of `files`; `batch` and `fixed` code them with `codec`."""

    def __init__(self, latent_codec: LatentCodec, factor: int, latent_space_dir: Path, files: list[Path],
                 cache_dir: Path, variants: CacheVariants, crop: int) -> None:
        cached = build_latent_cache(latent_space_dir, files, cache_dir, variants=variants)
        self.latent_codec = latent_codec.eval()
        self.files, self.variants, self.factor, self.crop = files, variants, factor, crop
        self._keys: dict[int, int] = {}  # file index -> window key, hashed when first drawn
        cells = crop // factor
        # Each cached latent is the k-th variant of its file; keep those a crop fits in.
        self.entries: list[tuple[int, int, torch.Tensor]] = []
        seen: dict[int, int] = {}
        for latent, source in zip(cached.latents, cached.sources, strict=True):
            variant = seen.get(source, 0)
            seen[source] = variant + 1
            if min(latent.shape[-2:]) >= cells:
                self.entries.append((source, variant, latent))
        if not self.entries:
            raise ValueError(f"no cached latent is at least {cells} on its short side")

    def _window(self, source: int, variant: int) -> torch.Tensor:
        """The pixels (3, H, W) uint8 whose latent the cache holds as this file's `variant`."""
        file = self.files[source]
        if source not in self._keys:
            self._keys[source] = window_key(entry_name(file))
        pixels = self.variants.of(load_rgb_uint8(file), self._keys[source])[variant]
        return pixels[0].mul(255).round().to(torch.uint8)

    def _draw(self, rng: np.random.Generator, count: int,
              levels: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cells = self.crop // self.factor
        images, latents = [], []
        for index in rng.integers(len(self.entries), size=count):
            source, variant, latent = self.entries[int(index)]
            top, left = (int(rng.integers(side - cells + 1)) for side in latent.shape[-2:])
            window = self._window(source, variant)
            f = self.factor
            images.append(window[:, top * f: (top + cells) * f, left * f: (left + cells) * f])
            latents.append(latent[:, top: top + cells, left: left + cells].float())
        level = torch.from_numpy(rng.uniform(0, levels - 1, size=count)).float()
        return torch.stack(images), torch.stack(latents), level

    @torch.no_grad()
    def _coded(self, latents: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        return self.latent_codec(latents, level).latent_hat

    def batch(self, seed: int, step: int, rank: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(images in [0, 1], ẑ) for batch `step`: a pure function of (seed, step, rank)."""
        rng = np.random.default_rng([seed, step, rank])
        images, latents, level = self._draw(rng, size, self.latent_codec.config.rate_levels)
        return images.float().div(255), self._coded(latents, level)

    def fixed(self, count: int, seed: int) -> GeneratedPairs:
        """`count` pairs drawn once (validation), with the rate level standing in for the quality."""
        rng = np.random.default_rng(seed)
        images, latents, level = self._draw(rng, count, self.latent_codec.config.rate_levels)
        coded = torch.cat([self._coded(latents[i: i + 8], level[i: i + 8]) for i in range(0, count, 8)])
        return GeneratedPairs(images, coded.half(), level.round().int())

