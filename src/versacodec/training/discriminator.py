"""Adversarial training signal: a patch discriminator on frozen pretrained features, hinge losses.

Why frozen features: a discriminator learned from pixels needs far more steps than a CPU run has
before its judgement means anything; heads on a fixed ImageNet network start from features that
already separate natural texture from blur (Sauer et al. 2021, "Projected GANs converge faster").
The features are LPIPS' AlexNet (weights from the `lpips` package, see `metrics.backbones`), so
the discriminator costs one extra AlexNet pass per image. Training-only: nothing here is shipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from versacodec.errors import InputError
from versacodec.metrics.backbones import AlexNetFeatures
from versacodec.metrics.lpips import INPUT_SCALE, INPUT_SHIFT
from versacodec.modeling import freeze


@dataclass(frozen=True)
class DiscriminatorConfig:
    layers: tuple[int, ...] = (0, 1, 2, 3)  # AlexNet ReLU outputs (0–4) that get a head
    width: int = 64  # channels of each head's hidden layer


class FeatureDiscriminator(nn.Module):
    """One logit map per configured AlexNet layer (patch realism at several scales)."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        channels = AlexNetFeatures.channels
        if not config.layers or any(not 0 <= layer < len(channels) for layer in config.layers):
            raise InputError(f"discriminator layers must be among 0–{len(channels) - 1}, not {config.layers}")
        self.layers = tuple(config.layers)
        self.features = freeze(AlexNetFeatures())
        self.heads = nn.ModuleList(
            nn.Sequential(spectral_norm(nn.Conv2d(channels[layer], config.width, 1)), nn.LeakyReLU(0.2),
                          spectral_norm(nn.Conv2d(config.width, 1, 3, padding=1)))
            for layer in self.layers)
        self.register_buffer("shift", torch.tensor(INPUT_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(INPUT_SCALE).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Images in [0, 1], (N, 3, H, W) → logit maps, one per head."""
        features = self.features(((images * 2 - 1) - self.shift) / self.scale)
        return [head(features[layer]) for layer, head in zip(self.layers, self.heads, strict=True)]

    def judge_without_learning(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Logits whose gradients reach `images` but not the heads: the generator's term must not
        train the discriminator (both terms share one backward pass in the training loop)."""
        trainable = [p for p in self.heads.parameters() if p.requires_grad]
        for parameter in trainable:
            parameter.requires_grad_(False)
        try:
            return self(images)
        finally:
            for parameter in trainable:
                parameter.requires_grad_(True)


def discriminator_hinge(real: list[torch.Tensor], fake: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The discriminator's hinge losses on real and on (detached) generated images, averaged over heads."""
    real_loss = torch.stack([torch.relu(1 - logits).mean() for logits in real]).mean()
    fake_loss = torch.stack([torch.relu(1 + logits).mean() for logits in fake]).mean()
    return real_loss, fake_loss


def generator_hinge(fake: list[torch.Tensor]) -> torch.Tensor:
    """The generator's adversarial loss: raise the discriminator's logits on its images."""
    return -torch.stack([logits.mean() for logits in fake]).mean()
