"""Training data for every stage that works on latents: the training pool split into training
and held-out validation images, their cached latents (and tags), and reproducible crop batches."""

from __future__ import annotations

from pathlib import Path

import torch

from versacodec.training.config import ScheduleConfig
from versacodec.training.data import list_images, split_train_validation, training_root
from versacodec.training.latent_cache import (
    WHOLE_IMAGES,
    CacheVariants,
    LatentCropSampler,
    build_latent_cache,
    build_tag_cache,
)

VALIDATION_SEED = 12345


class LatentTrainingData:
    def __init__(self, autoencoder: str | Path, cache_dir: str | Path, crop: int, schedule: ScheduleConfig,
                 with_tags: bool = False, validation_batch: int = 32,
                 variants: CacheVariants = WHOLE_IMAGES) -> None:
        files = list_images(training_root(schedule.data_dir))
        train_files, validation_files = split_train_validation(files, schedule.validation_images)
        cache = Path(cache_dir)
        autoencoder = Path(autoencoder)
        self.sampler = LatentCropSampler(build_latent_cache(autoencoder, train_files, cache, variants=variants),
                                         crop, schedule.seed)
        validation = LatentCropSampler(
            build_latent_cache(autoencoder, validation_files, cache, progress=False, variants=variants),
            crop, VALIDATION_SEED)
        self.validation_latents, validation_sources = validation.batch(0, validation_batch)
        self.train_tags = build_tag_cache(train_files, cache) if with_tags else None
        validation_tags = build_tag_cache(validation_files, cache, progress=False) if with_tags else None
        self.validation_tags = [validation_tags[i] for i in validation_sources] if with_tags else None

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, list[list[int]] | None]:
        latents, sources = self.sampler.batch(step, batch_size)
        tags = [self.train_tags[i] for i in sources] if self.train_tags is not None else None
        return latents, tags


def drop_tags(tags: list[list[int]], probability: float, generator: torch.Generator) -> list[list[int]]:
    """Replace each sample's tags by the empty set with `probability`, so the unconditional branch
    of classifier-free guidance is learned."""
    keep = torch.rand(len(tags), generator=generator) >= probability
    return [t if k else [] for t, k in zip(tags, keep.tolist(), strict=True)]
