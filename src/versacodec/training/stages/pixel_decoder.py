"""Stage `pixel_decoder`: fine-tune the generative path's pixel decoder (`generative.pixel_decoder`).

Pairs of training crops and the latents the bundle's generative decode makes from real streams of
them (`training.generated_latents`, cached once) teach the autoencoder decoder's upsampling tail to
render generated latents (with `pairs.decoder: direct`, the codec's ẑ instead). Loss =
l1·|x − x̂| + mse·(x − x̂)² + lpips·LPIPS-alex + dists·DISTS (+ adversarial·hinge of a feature
discriminator, `training.discriminator`, trained in the same step); a term weighted 0 is not
computed. The direct decoder already serves fidelity, this one serves perceived quality.
Everything but the tail stays frozen, so streams, the codec and the prior are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from accelerate import Accelerator
from torch import nn

from versacodec.codec import Codec
from versacodec.errors import InputError
from versacodec.generative.pixel_decoder import PixelDecoder
from versacodec.latent_space.autoencoder import Autoencoder
from versacodec.metrics.dists import DISTS
from versacodec.metrics.lpips import LPIPS
from versacodec.metrics.quality import psnr
from versacodec.modeling import freeze
from versacodec.training.config import ScheduleConfig
from versacodec.training.data import list_images, split_train_validation, training_root
from versacodec.training.discriminator import (
    DiscriminatorConfig,
    FeatureDiscriminator,
    discriminator_hinge,
    generator_hinge,
)
from versacodec.training.generated_latents import GeneratedPairsConfig, build_generated_pairs


@dataclass(frozen=True)
class PixelDecoderLoss:
    l1: float = 1.0
    mse: float = 0.0  # fidelity in PSNR's own terms (the direct path's decoder)
    lpips: float = 1.0
    dists: float = 1.0
    adversarial: float = 0.0  # > 0 trains a discriminator beside the tail (FID: realistic texture)
    adversarial_start_step: int = 0  # the discriminator alone learns before this step

    def __post_init__(self) -> None:
        weights = self.reconstruction_weights() | {"adversarial": self.adversarial}
        if any(w < 0 for w in weights.values()) or not any(w > 0 for w in weights.values()):
            raise InputError(f"loss weights must be >= 0 with at least one > 0, not {weights}")

    def reconstruction_weights(self) -> dict[str, float]:
        return {"l1": self.l1, "mse": self.mse, "lpips": self.lpips, "dists": self.dists}


@dataclass(frozen=True)
class PixelDecoderStageConfig:
    bundle: str | None = None  # the model whose streams and generative decode make the pairs (default: shipped)
    init_from: str | None = None  # a previous run's pixel decoder folder; default: the autoencoder's own tail
    first_layer: int = 6  # where the trained tail begins in the autoencoder decoder (see PixelDecoderConfig)
    cache_dir: str = "cache"
    pairs: GeneratedPairsConfig = field(default_factory=GeneratedPairsConfig)
    validation_pairs: int = 48  # from the held-out files, never an evaluation set
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: PixelDecoderLoss = field(default_factory=PixelDecoderLoss)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)  # used when adversarial > 0


class _Rendered(NamedTuple):
    images: torch.Tensor
    real_logits: list[torch.Tensor]  # discriminator on the targets (empty without one)
    fake_logits: list[torch.Tensor]  # on the detached renders: trains the discriminator only
    generator_logits: list[torch.Tensor]  # on the renders through a frozen discriminator: trains the tail only


class _Render(nn.Module):
    """Frozen autoencoder head + trainable tail (+ discriminator): one forward for DDP."""

    def __init__(self, autoencoder: Autoencoder, pixel_decoder: PixelDecoder,
                 discriminator: FeatureDiscriminator | None) -> None:
        super().__init__()
        self.autoencoder, self.pixel_decoder = freeze(autoencoder), pixel_decoder
        self.discriminator = discriminator

    def forward(self, latents: torch.Tensor, targets: torch.Tensor) -> _Rendered:
        rendered = self.pixel_decoder(self.autoencoder, latents)
        if self.discriminator is None:
            return _Rendered(rendered, [], [], [])
        real_and_fake = self.discriminator(torch.cat([targets, rendered.detach()]))
        real = [logits[: len(targets)] for logits in real_and_fake]
        fake = [logits[len(targets):] for logits in real_and_fake]
        return _Rendered(rendered, real, fake, self.discriminator.judge_without_learning(rendered))


class PixelDecoderStage:
    def __init__(self, config: PixelDecoderStageConfig) -> None:
        self.config, self.schedule = config, config.schedule
        codec = Codec.from_pretrained(config.bundle)
        factor = codec.autoencoder.factor
        if self.schedule.crop_size % factor or self.schedule.crop_size > config.pairs.crop_size:
            raise InputError(f"crop_size must be a multiple of {factor} and at most pairs.crop_size")
        pixel_decoder = (PixelDecoder.from_pretrained(config.init_from) if config.init_from
                         else PixelDecoder.from_autoencoder(codec.autoencoder, config.first_layer))
        pixel_decoder.check_fits(codec.autoencoder)
        discriminator = FeatureDiscriminator(config.discriminator) if config.loss.adversarial > 0 else None
        self.render = _Render(codec.autoencoder, pixel_decoder, discriminator)
        files = list_images(training_root(self.schedule.data_dir))
        train_files, validation_files = split_train_validation(files, self.schedule.validation_images)
        cache = Path(config.cache_dir)
        self.pairs = build_generated_pairs(codec, train_files, config.pairs, cache)
        self.validation = build_generated_pairs(
            codec, validation_files,
            GeneratedPairsConfig(config.validation_pairs, config.pairs.crop_size, config.pairs.qualities,
                                 config.pairs.decoder, seed=12345), cache)
        self.factor = factor
        self.lpips, self.dists = LPIPS("alex"), DISTS()
        self._baseline: dict[str, float] | None = None

    def trainable(self) -> nn.Module:
        return self.render

    def prepare(self, accelerator: Accelerator) -> None:
        self.lpips.to(accelerator.device)
        self.dists.to(accelerator.device)

    def _batch(self, step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Random pairs, each cropped at a random latent-aligned window of crop_size pixels."""
        rng = np.random.default_rng([self.schedule.seed, step, rank])
        crop, f = self.schedule.crop_size, self.factor
        cells = (self.pairs.images.shape[-1] - crop) // f + 1
        images, latents = [], []
        for index in rng.integers(len(self.pairs.images), size=self.schedule.batch_size):
            top, left = (int(v) for v in rng.integers(cells, size=2))
            images.append(self.pairs.images[index, :, top * f: top * f + crop, left * f: left * f + crop])
            latents.append(self.pairs.latents[index, :, top: top + crop // f, left: left + crop // f])
        return torch.stack(images).float().div(255), torch.stack(latents).float()

    def _losses(self, rendered: torch.Tensor, images: torch.Tensor,
                terms: tuple[str, ...] = ("l1", "mse", "lpips", "dists")) -> dict[str, torch.Tensor]:
        """The named terms only: a term weighted 0 in training costs no forward or backward pass."""
        measures = {"l1": lambda: (rendered - images).abs().mean(),
                    "mse": lambda: (rendered - images).square().mean(),
                    "lpips": lambda: self.lpips(rendered, images).mean(),
                    "dists": lambda: self.dists(rendered.clamp(0, 1), images).mean()}
        return {name: measures[name]() for name in terms}

    def training_step(self, model, step, rank, device):
        images, latents = (t.to(device) for t in self._batch(step, rank))
        rendered = model(latents, images)
        weights = self.config.loss
        weighted = {name: w for name, w in weights.reconstruction_weights().items() if w > 0}
        terms = self._losses(rendered.images, images, tuple(weighted))
        loss = sum(weighted[name] * value for name, value in terms.items())
        if rendered.real_logits:
            # One backward serves both players: the discriminator's terms see detached renders,
            # the tail's term a discriminator that does not learn from it.
            terms["d_real"], terms["d_fake"] = discriminator_hinge(rendered.real_logits, rendered.fake_logits)
            terms["adversarial"] = generator_hinge(rendered.generator_logits)
            generator_weight = weights.adversarial if step >= weights.adversarial_start_step else 0.0
            loss = loss + generator_weight * terms["adversarial"] + terms["d_real"] + terms["d_fake"]
        return loss, {"loss": loss.item(), **{name: value.item() for name, value in terms.items()}}

    @torch.no_grad()
    def _scores(self, decode, device) -> dict[str, float]:
        """Mean L1, LPIPS, DISTS and PSNR of `decode(latents)` over the held-out pairs."""
        images, latents = self.validation.images.float().div(255), self.validation.latents.float()
        scores = {"l1": 0.0, "mse": 0.0, "lpips": 0.0, "dists": 0.0, "psnr": 0.0}
        for start in range(0, len(images), 8):
            target = images[start: start + 8].to(device)
            rendered = decode(latents[start: start + 8].to(device))
            terms = self._losses(rendered, target) | {"psnr": psnr(rendered, target).mean()}
            for key, value in terms.items():
                scores[key] += value.item() * len(target) / len(images)
        return scores

    def validate(self, device):
        """The tail's scores on held-out pairs, next to the autoencoder decoder's on the same latents
        (which never change, so they are measured once)."""
        autoencoder = self.render.autoencoder
        if self._baseline is None:
            self._baseline = self._scores(autoencoder.decode, device)
        tail = self._scores(partial(self.render.pixel_decoder.decode, autoencoder), device)
        return {f"tail_{key}": value for key, value in tail.items()} | {
            f"autoencoder_{key}": value for key, value in self._baseline.items()}

    def export(self, directory: Path) -> None:
        self.render.pixel_decoder.cpu().eval().save_pretrained(directory)
