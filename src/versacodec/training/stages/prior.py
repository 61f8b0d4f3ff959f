"""Stage `prior`: pretrain the base latent diffusion prior on cached training latents.

A small diffusers UNet2DConditionModel learns the distribution of autoencoder latents,
conditioned through cross-attention on the tagger's class ids; tags are dropped at random so
the unconditional branch used by classifier-free guidance is learned too. The result is frozen
in every later stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from diffusers import UNet2DConditionModel
from torch import nn

from versacodec.generative.decoder import PriorArchitecture, default_scheduler
from versacodec.generative.schedule import NoiseSchedule
from versacodec.generative.tags import TagEmbedding, TagEmbeddingConfig, semantic_class_vectors
from versacodec.training.config import ScheduleConfig
from versacodec.training.latent_data import LatentTrainingData, drop_tags


@dataclass(frozen=True)
class PriorStageConfig:
    autoencoder: str = "runs/autoencoder/final"
    cache_dir: str = "cache"
    latent_crop: int = 32
    tag_dropout: float = 0.15
    # A folder with unet/ and tags/ (a prior run's final/, or a bundle's generative/) to continue
    # training from; `architecture` and `tags` are then read from it.
    init_from: str | None = None
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    architecture: PriorArchitecture = field(default_factory=PriorArchitecture)
    tags: TagEmbeddingConfig = field(default_factory=TagEmbeddingConfig)


class PriorModel(nn.Module):
    """UNet + tag embedding, trained together (one forward for DDP)."""

    def __init__(self, unet: nn.Module, tags: TagEmbedding) -> None:
        super().__init__()
        self.unet, self.tags = unet, tags

    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, tag_ids: torch.Tensor) -> torch.Tensor:
        return self.unet(noisy, timesteps, encoder_hidden_states=self.tags(tag_ids)).sample


def noisy_batch(schedule: NoiseSchedule, clean: torch.Tensor, generator: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(noisy latents, uniformly drawn timesteps, the denoiser's regression target)."""
    timesteps = torch.randint(0, schedule.num_train_timesteps, (clean.shape[0],), generator=generator)
    timesteps = timesteps.to(clean.device)
    noise = torch.randn(clean.shape, generator=generator).to(clean)
    return schedule.add_noise(clean, noise, timesteps), timesteps, schedule.target(clean, noise, timesteps)


class PriorStage:
    config_class = PriorStageConfig

    def __init__(self, config: PriorStageConfig) -> None:
        from versacodec.semantics.tagger import classifier_class_vectors

        self.config, self.schedule = config, config.schedule
        if config.tags.embedding_dim != config.architecture.cross_attention_dim:
            raise ValueError("tags.embedding_dim must equal architecture.cross_attention_dim")
        self.data = LatentTrainingData(config.autoencoder, config.cache_dir, config.latent_crop, self.schedule,
                                       with_tags=True)
        if config.init_from:
            start = Path(config.init_from)
            unet = UNet2DConditionModel.from_pretrained(start / "unet", local_files_only=True)
            self.model = PriorModel(unet, TagEmbedding.from_pretrained(start / "tags"))
        else:
            vectors = semantic_class_vectors(classifier_class_vectors(), config.tags.semantic_dim)
            self.model = PriorModel(config.architecture.build(), TagEmbedding(config.tags, vectors))
        self.scheduler = default_scheduler()
        self.noise = NoiseSchedule(self.scheduler)

    def trainable(self) -> nn.Module:
        return self.model

    def prepare(self, accelerator: Accelerator) -> None:
        pass

    def training_step(self, model, step, rank, device):
        generator = torch.Generator().manual_seed(step * 9973 + rank)
        latents, tags = self.data.batch(step, self.schedule.batch_size)
        tags = drop_tags(tags, self.config.tag_dropout, generator)
        noisy, timesteps, target = noisy_batch(self.noise, latents.to(device), generator)
        loss = F.mse_loss(model(noisy, timesteps, self.model.tags.pad(tags, device=device)), target)
        return loss, {"loss": loss.item()}

    def validate(self, device):
        generator = torch.Generator().manual_seed(0)
        latents = self.data.validation_latents.to(device)
        noisy, timesteps, target = noisy_batch(self.noise, latents, generator)
        loss = F.mse_loss(self.model(noisy, timesteps, self.model.tags.pad(self.data.validation_tags, device=device)),
                          target)
        return {"loss": loss.item()}

    def export(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.model.unet.save_pretrained(directory / "unet")
        self.model.tags.save_pretrained(directory / "tags")
        self.scheduler.save_pretrained(directory / "scheduler")
