"""Stage `autoencoder`: train the default latent space on random crops of the training pool.

Loss = l1·|x − x̂| + mse·(x − x̂)² + lpips·LPIPS-alex(x, x̂) + latent_l2·mean(z²). The small latent
penalty keeps the raw latent scale bounded; the exported model stores per-channel statistics so
its `encode` returns normalised latents.

`train_encoder: false` (with `init_from`) fine-tunes the decoder alone: the encoder and the latent
statistics stay bit for bit, so every latent, and so every stream and every model trained on the
latents (codec, prior, control branch), stays valid while the round trip improves.
`frozen_decoder_layers: N` also keeps the decoder's first N layers: the generative pixel decoder
reuses them (its own tail starts at its `first_layer`, 6 in the shipped model), so with N equal to
that the shipped pixel decoder stays valid too and the fine-tune only touches the direct decode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from torch import nn

from versacodec.errors import InputError
from versacodec.latent_space.autoencoder import Autoencoder, AutoencoderConfig
from versacodec.metrics.lpips import LPIPS
from versacodec.metrics.quality import psnr
from versacodec.training.config import ScheduleConfig
from versacodec.training.data import CropSampler, list_images, split_train_validation, training_root


@dataclass(frozen=True)
class AutoencoderLoss:
    l1: float = 1.0
    mse: float = 0.0
    lpips: float = 0.5
    latent_l2: float = 1e-4


@dataclass(frozen=True)
class AutoencoderStageConfig:
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    model: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    loss: AutoencoderLoss = field(default_factory=AutoencoderLoss)
    init_from: str | None = None  # a save_pretrained folder to fine-tune from
    train_encoder: bool = True  # false: decoder-only fine-tuning of `init_from`
    frozen_decoder_layers: int = 0  # decoder layers kept as they are (with train_encoder: false)


class _RoundTrip(nn.Module):
    """What the optimiser trains: image → raw latent → image (one forward for DDP)."""

    def __init__(self, autoencoder: Autoencoder, train_encoder: bool, frozen_decoder_layers: int) -> None:
        super().__init__()
        self.autoencoder = autoencoder
        self.train_encoder = train_encoder
        autoencoder.encoder.requires_grad_(train_encoder)
        for layer in list(autoencoder.decoder)[:frozen_decoder_layers]:
            layer.requires_grad_(False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.set_grad_enabled(self.train_encoder and torch.is_grad_enabled()):
            raw = self.autoencoder.encode_raw(images)
        return self.autoencoder.decode_raw(raw), raw


class AutoencoderStage:
    config_class = AutoencoderStageConfig

    def __init__(self, config: AutoencoderStageConfig) -> None:
        self.config, self.schedule = config, config.schedule
        if not config.train_encoder and not config.init_from:
            raise InputError("train_encoder: false fine-tunes a trained autoencoder's decoder: set init_from")
        if config.frozen_decoder_layers and config.train_encoder:
            raise InputError("frozen_decoder_layers keeps layers that a trained encoder's latents would "
                             "no longer fit: set train_encoder: false")
        autoencoder = (Autoencoder.from_pretrained(config.init_from) if config.init_from
                       else Autoencoder(config.model))
        layers = len(autoencoder.decoder)
        if not 0 <= config.frozen_decoder_layers < layers:
            raise InputError(f"frozen_decoder_layers must be in 0..{layers - 1} (the decoder has {layers} layers)")
        self.round_trip = _RoundTrip(autoencoder, config.train_encoder, config.frozen_decoder_layers)
        files = list_images(training_root(self.schedule.data_dir))
        train_files, self.validation_files = split_train_validation(files, self.schedule.validation_images)
        self.sampler = CropSampler(train_files, self.schedule.crop_size, self.schedule.seed)
        self.validation = CropSampler(self.validation_files, 256, seed=12345).batch(0, len(self.validation_files))
        self.lpips = LPIPS("alex")

    @property
    def autoencoder(self) -> Autoencoder:
        return self.round_trip.autoencoder

    def trainable(self) -> nn.Module:
        return self.round_trip

    def prepare(self, accelerator: Accelerator) -> None:
        self.lpips.to(accelerator.device)

    def training_step(self, model, step, rank, device):
        images = self.sampler.batch(step, self.schedule.batch_size).to(device)
        reconstruction, raw = model(images)
        weights = self.config.loss
        l1 = (reconstruction - images).abs().mean()
        mse = F.mse_loss(reconstruction, images)
        perceptual = self.lpips(reconstruction, images).mean() if weights.lpips > 0 else l1.new_zeros(())
        latent_l2 = raw.pow(2).mean()
        loss = weights.l1 * l1 + weights.mse * mse + weights.lpips * perceptual + weights.latent_l2 * latent_l2
        return loss, {"loss": loss.item(), "l1": l1.item(), "lpips": perceptual.item(),
                      "psnr": psnr(reconstruction.detach().clamp(0, 1), images).mean().item(),
                      "latent_rms": latent_l2.sqrt().item()}

    def validate(self, device):
        images = self.validation.to(device)
        reconstruction = self.autoencoder.decode_raw(self.autoencoder.encode_raw(images)).clamp(0, 1)
        return {"psnr": psnr(reconstruction, images).mean().item(),
                "lpips": self.lpips(reconstruction, images).mean().item()}

    def export(self, directory: Path) -> None:
        autoencoder = self.autoencoder.cpu().eval()
        if self.config.train_encoder:  # a frozen encoder keeps the statistics its latents were coded with
            with torch.no_grad():
                crops = self.sampler.batch(10**9, 64)
                autoencoder.set_latent_statistics(autoencoder.encode_raw(crops))
        autoencoder.save_pretrained(directory)
