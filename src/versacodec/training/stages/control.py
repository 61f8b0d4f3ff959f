"""Stage `control`: train the control branch jointly with the latent codec (Diff-ICMH §3.5).

Per sample: L = bpp + λ(level)·(‖z − ẑ‖² + λ_diff·‖target − prediction‖² + λ_sem·L_sem), which is
the paper's λ_rate·R + L_dist + λ_diff·L_diff + λ_sem·L_sem divided by λ_rate. The base prior
and tag embedding stay frozen; the control branch (a trainable copy of the prior's encoder with
zero-initialised outputs) sees ẑ. Run twice as in the paper: first at a fixed high rate
(`levels: [5, 5]`), then over all rates (`levels: [0, 5]`, `init_from` the first run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from diffusers import ControlNetModel, DDIMScheduler, UNet2DConditionModel
from torch import nn

from versacodec.generative.decoder import GenerativeConfig, GenerativeDecoder, control_branch
from versacodec.generative.losses import SemanticLossConfig, semantic_consistency_loss
from versacodec.generative.schedule import NoiseSchedule
from versacodec.generative.tags import TagEmbedding
from versacodec.latent_codec.model import LatentCodec
from versacodec.latent_codec.partial_synthesis import COMPONENT as PARTIAL_SYNTHESIS
from versacodec.latent_codec.partial_synthesis import PartialSynthesis
from versacodec.modeling import freeze
from versacodec.training.config import ScheduleConfig
from versacodec.training.latent_data import LatentTrainingData, drop_tags
from versacodec.training.stages.latent_codec import LatentCodecLoss, bits_per_pixel, rate_lambda
from versacodec.training.stages.prior import noisy_batch


@dataclass(frozen=True)
class ControlLoss:
    diffusion: float = 1.0
    semantic: float = 2.0
    semantic_config: SemanticLossConfig = field(default_factory=SemanticLossConfig)
    rate: LatentCodecLoss = field(default_factory=LatentCodecLoss)


@dataclass(frozen=True)
class ControlStageConfig:
    autoencoder: str = "runs/autoencoder/final"
    latent_codec: str = "runs/latent_codec/final"  # starting point of the jointly trained codec
    prior: str = "runs/prior/final"
    init_from: str | None = None  # a previous control run's final/ (stage two starts from stage one)
    cache_dir: str = "cache"
    latent_crop: int = 32
    tag_dropout: float = 0.15
    levels: tuple[float, float] = (0.0, 5.0)  # rate levels drawn uniformly from this range
    train_codec: str = "all"  # "all", "decoder" (synthesis only: DISCOVER stage II) or "none"
    drop_fraction: tuple[float, float] = (0.0, 0.0)  # stage II: share of y positions dropped per sample
    # false: the control branch stays as `init_from` left it, so only the codec part named by
    # `train_codec` learns (a synthesis for partial streams that leaves full-stream decoding alone)
    train_control: bool = True
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: ControlLoss = field(default_factory=ControlLoss)
    generative: GenerativeConfig = field(default_factory=GenerativeConfig)


class JointModel(nn.Module):
    """Latent codec + control branch (trainable) around the frozen prior. Everything that needs
    gradients happens in `forward`, so DDP synchronises them."""

    def __init__(self, codec: LatentCodec, controlnet: ControlNetModel, unet: UNet2DConditionModel,
                 semantic: SemanticLossConfig) -> None:
        super().__init__()
        self.codec, self.controlnet, self.unet = codec, controlnet, freeze(unet)
        self.semantic = semantic

    def forward(self, latents, levels, tokens, noisy, timesteps, with_semantic: bool, keep=None):
        output = self.codec(latents, levels, keep)
        down, mid = self.controlnet(noisy, timesteps, encoder_hidden_states=tokens,
                                    controlnet_cond=output.latent_hat, return_dict=False)
        prediction = self.unet(noisy, timesteps, encoder_hidden_states=tokens, down_block_additional_residuals=down,
                               mid_block_additional_residual=mid).sample
        semantic = (semantic_consistency_loss(self.unet, latents, output.latent_hat, tokens, self.semantic)
                    if with_semantic else latents.new_zeros(latents.shape[0]))
        return output, prediction, semantic


def random_keep_masks(batch: int, height: int, width: int, drop: tuple[float, float],
                      generator: torch.Generator) -> torch.Tensor | None:
    """(B, 1, h, w) masks of transmitted positions: random rectangles are dropped until a share drawn
    uniformly from `drop` is gone, like the background a partial stream leaves out."""
    low, high = drop
    if high <= 0:
        return None
    masks = torch.ones(batch, 1, height, width, dtype=torch.bool)
    for index in range(batch):
        target = low + float(torch.rand((), generator=generator)) * (high - low)
        while (~masks[index]).float().mean() < target:
            h = int(torch.randint(1, height + 1, (), generator=generator))
            w = int(torch.randint(1, width + 1, (), generator=generator))
            top = int(torch.randint(0, height - h + 1, (), generator=generator))
            left = int(torch.randint(0, width - w + 1, (), generator=generator))
            masks[index, :, top : top + h, left : left + w] = False
    return masks


class ControlStage:
    config_class = ControlStageConfig

    def __init__(self, config: ControlStageConfig) -> None:
        self.config, self.schedule = config, config.schedule
        start = Path(config.init_from) if config.init_from else None
        prior = Path(config.prior)
        unet = UNet2DConditionModel.from_pretrained(prior / "unet", local_files_only=True)
        self.scheduler = DDIMScheduler.from_pretrained(prior / "scheduler", local_files_only=True)
        self.tags = freeze(TagEmbedding.from_pretrained(prior / "tags"))
        codec = LatentCodec.from_pretrained(start / "latent_codec" if start else config.latent_codec)
        if config.train_codec not in ("all", "decoder", "none"):
            raise ValueError("train_codec must be 'all', 'decoder' or 'none'")
        codec.requires_grad_(config.train_codec == "all")
        if config.train_codec == "decoder":
            codec.synthesis.requires_grad_(True)
        controlnet = (ControlNetModel.from_pretrained(start / "generative" / "controlnet", local_files_only=True)
                      if start else control_branch(unet))
        controlnet.requires_grad_(config.train_control)
        self.model = JointModel(codec, controlnet, unet, config.loss.semantic_config)
        self.noise = NoiseSchedule(self.scheduler)
        self.data = LatentTrainingData(config.autoencoder, config.cache_dir, config.latent_crop, self.schedule,
                                       with_tags=True)
        self.log_lambdas = torch.tensor([math.log(v) for v in config.loss.rate.lambdas])

    def trainable(self) -> nn.Module:
        return self.model

    def prepare(self, accelerator: Accelerator) -> None:
        self.tags.to(accelerator.device)
        self.log_lambdas = self.log_lambdas.to(accelerator.device)

    def _losses(self, model, latents, tags, levels, generator):
        weights = self.config.loss
        tokens = self.tags(self.tags.pad(tags, device=latents.device))
        noisy, timesteps, target = noisy_batch(self.noise, latents, generator)
        keep = random_keep_masks(latents.shape[0], latents.shape[-2] // 2, latents.shape[-1] // 2,
                                 self.config.drop_fraction, generator)
        if keep is not None:
            keep = keep.to(latents.device)
        output, prediction, semantic = model(latents, levels, tokens, noisy, timesteps, weights.semantic > 0, keep)
        bpp = bits_per_pixel(output.likelihoods, latents.shape)
        mse = (output.latent_hat - latents).pow(2).flatten(1).mean(1)
        diffusion = (prediction - target).pow(2).flatten(1).mean(1)
        lam = rate_lambda(self.log_lambdas, levels)
        loss = (bpp + lam * (mse + weights.diffusion * diffusion + weights.semantic * semantic)).mean()
        return loss, {"loss": loss.item(), "bpp": bpp.mean().item(), "mse": mse.mean().item(),
                      "diffusion": diffusion.mean().item(), "semantic": semantic.mean().item()}

    def training_step(self, model, step, rank, device):
        generator = torch.Generator().manual_seed(step * 7919 + rank)
        latents, tags = self.data.batch(step, self.schedule.batch_size)
        tags = drop_tags(tags, self.config.tag_dropout, generator)
        low, high = self.config.levels
        levels = (low + torch.rand(latents.shape[0], generator=generator) * (high - low)).to(device)
        return self._losses(model, latents.to(device), tags, levels, generator)

    def validate(self, device):
        generator = torch.Generator().manual_seed(0)
        latents = self.data.validation_latents.to(device)
        high = self.config.levels[1]
        levels = torch.full((latents.shape[0],), float(high), device=device)
        self.model.eval()
        _, scalars = self._losses(self.model, latents, self.data.validation_tags, levels, generator)
        return scalars

    def export(self, directory: Path) -> None:
        codec = self.model.codec.cpu().eval()
        codec.build_tables()
        codec.save_pretrained(directory / "latent_codec")
        if self.config.train_codec == "decoder" and self.config.drop_fraction[1] > 0:
            PartialSynthesis.from_codec(codec).save_pretrained(directory / PARTIAL_SYNTHESIS)
        decoder = GenerativeDecoder(self.model.unet.cpu(), self.model.controlnet.cpu().eval(), self.tags.cpu(),
                                    self.scheduler, self.config.generative)
        decoder.save_pretrained(directory / "generative")
