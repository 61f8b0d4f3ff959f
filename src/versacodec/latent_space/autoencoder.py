"""versacodec's own autoencoder: the default latent space (f = 8).

Cheap on a CPU by construction: the encoder starts with a pixel-unshuffle, the decoder ends
with pixel-shuffles, and the wide layers run at 1/8 and 1/4 resolution; only a 16-channel
3x3 convolution touches full resolution. No normalisation layers, so a tile decodes exactly
like the same region of the whole image (up to the receptive field), which tiling relies on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from versacodec.blocks import residual_blocks
from versacodec.modeling import PretrainedModule


@dataclass(frozen=True)
class AutoencoderConfig:
    latent_channels: int = 16
    encoder_widths: tuple[int, int, int] = (32, 64, 128)  # at 1/2, 1/4, 1/8 resolution
    encoder_blocks: tuple[int, int, int] = (1, 2, 3)
    decoder_widths: tuple[int, int, int] = (160, 96, 48)  # at 1/8, 1/4, 1/2 resolution
    decoder_blocks: tuple[int, int, int] = (4, 3, 2)
    output_width: int = 16  # the only full-resolution layer

    @property
    def factor(self) -> int:
        return 8


class Encoder(nn.Sequential):
    def __init__(self, config: AutoencoderConfig) -> None:
        w1, w2, w3 = config.encoder_widths
        n1, n2, n3 = config.encoder_blocks
        super().__init__(
            nn.PixelUnshuffle(2),
            nn.Conv2d(12, w1, 3, padding=1),
            *residual_blocks(w1, n1),
            nn.Conv2d(w1, w2, 3, stride=2, padding=1),
            *residual_blocks(w2, n2),
            nn.Conv2d(w2, w3, 3, stride=2, padding=1),
            *residual_blocks(w3, n3),
            nn.SiLU(),
            nn.Conv2d(w3, config.latent_channels, 3, padding=1),
        )


class Decoder(nn.Sequential):
    def __init__(self, config: AutoencoderConfig) -> None:
        w1, w2, w3 = config.decoder_widths
        n1, n2, n3 = config.decoder_blocks
        out = config.output_width
        super().__init__(
            nn.Conv2d(config.latent_channels, w1, 3, padding=1),
            *residual_blocks(w1, n1),
            nn.Conv2d(w1, w2 * 4, 3, padding=1),
            nn.PixelShuffle(2),
            *residual_blocks(w2, n2),
            nn.Conv2d(w2, w3 * 4, 3, padding=1),
            nn.PixelShuffle(2),
            *residual_blocks(w3, n3),
            nn.SiLU(),
            nn.Conv2d(w3, out * 4, 3, padding=1),
            nn.PixelShuffle(2),
            nn.SiLU(),
            nn.Conv2d(out, 3, 3, padding=1),
        )


class Autoencoder(PretrainedModule):
    """Image in [0, 1] <-> latent normalised by per-channel statistics measured after training."""

    config_class = AutoencoderConfig
    name = "versacodec-ae"

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__(config)
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.register_buffer("latent_mean", torch.zeros(1, config.latent_channels, 1, 1))
        self.register_buffer("latent_std", torch.ones(1, config.latent_channels, 1, 1))

    @property
    def factor(self) -> int:
        return self.config.factor

    @property
    def channels(self) -> int:
        return self.config.latent_channels

    @property
    def peak_channels_per_pixel(self) -> float:
        # Full resolution: the output layer; half resolution: the decoder's last and encoder's first stage.
        c = self.config
        return max(c.output_width, c.decoder_widths[2] / 4, c.encoder_widths[0] / 4)

    def encode_raw(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images * 2 - 1)

    def decode_raw(self, raw_latents: torch.Tensor) -> torch.Tensor:
        return self.decoder(raw_latents) * 0.5 + 0.5

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return (self.encode_raw(images) - self.latent_mean) / self.latent_std

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decode_latents_unclamped(latents).clamp(0, 1)

    def decode_latents_unclamped(self, latents: torch.Tensor) -> torch.Tensor:
        """The decoder's pixels before clamping: a loss through it keeps gradients everywhere."""
        return self.decode_raw(latents * self.latent_std + self.latent_mean)

    @torch.no_grad()
    def set_latent_statistics(self, raw_latents: torch.Tensor) -> None:
        """Fix the normalisation from raw latents of training images (N, C, h, w)."""
        self.latent_mean.copy_(raw_latents.mean((0, 2, 3), keepdim=True))
        self.latent_std.copy_(raw_latents.std((0, 2, 3), keepdim=True).clamp_min(1e-6))
