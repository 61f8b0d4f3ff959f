"""Training pairs for the generative pixel decoder: an image crop and the latent that the shipped
generative path produces from a real stream of it, computed once and cached.

Each crop is compressed by a model bundle at a random quality (real entropy coding, the tagger's
tags, a per-crop seed) and decoded up to the latent the pixel decoder receives (the one-step
generative decode by default), so the decoder trains on exactly what it will see. The cache name
carries the bundle's weights and generative digests and the sampling settings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from versacodec.bundle import component_hash
from versacodec.codec import Codec
from versacodec.determinism import reproducible_inference
from versacodec.generative.decoder import PIXEL_DECODER
from versacodec.options import DecodeOptions
from versacodec.training.data import CropSampler


@dataclass(frozen=True)
class GeneratedPairsConfig:
    crops: int = 1600  # pairs drawn from the training files
    crop_size: int = 256  # pixels; a multiple of the codec's block (64)
    qualities: tuple[int, int] = (0, 100)  # drawn uniformly from this range, both ends included
    decoder: str = "generative"  # the latent the pixel decoder learns to render
    seed: int = 0


class GeneratedPairs(NamedTuple):
    images: torch.Tensor  # (N, 3, H, W) uint8
    latents: torch.Tensor  # (N, C, H/f, W/f) float16
    qualities: torch.Tensor  # (N,) int


def pairs_cache_name(codec: Codec, files: list[Path], config: GeneratedPairsConfig) -> str:
    digest = hashlib.sha256(codec.model.weights_hash)
    generative = codec.model.manifest.path(codec.model.root, "generative")
    # The latents do not depend on a pixel decoder the bundle may already have (one trained earlier).
    ignored = frozenset() if generative is None else frozenset(
        path.relative_to(generative).as_posix() for path in (generative / PIXEL_DECODER).rglob("*"))
    digest.update(component_hash(codec.model.root, codec.model.manifest, "generative", ignored) or b"")
    digest.update(repr((config, [str(f) for f in files])).encode())
    return f"generated-{digest.hexdigest()[:16]}.pt"


@torch.no_grad()
def build_generated_pairs(codec: Codec, files: list[Path], config: GeneratedPairsConfig, cache_dir: Path,
                          progress: bool = True) -> GeneratedPairs:
    path = cache_dir / pairs_cache_name(codec, files, config)
    if path.exists():
        return GeneratedPairs(**torch.load(path, weights_only=True))
    sampler = CropSampler(files, config.crop_size, config.seed)
    rng = np.random.default_rng(config.seed)
    images, latents, qualities = [], [], []
    for index in tqdm(range(config.crops), desc="coding training crops", disable=not progress):
        crop = sampler.batch(index, 1)[0]
        pixels = crop.mul(255).round().to(torch.uint8)
        quality = int(rng.integers(config.qualities[0], config.qualities[1] + 1))
        encoded = codec.encode(Image.fromarray(pixels.permute(1, 2, 0).numpy()), quality=quality, seed=index)
        with reproducible_inference():
            latent = codec.output_latent(codec.read(encoded.data), DecodeOptions(config.decoder))
        images.append(pixels)
        latents.append(latent[0].half())
        qualities.append(quality)
    pairs = GeneratedPairs(torch.stack(images), torch.stack(latents), torch.tensor(qualities))
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(pairs._asdict(), tmp)
    tmp.replace(path)
    return pairs
