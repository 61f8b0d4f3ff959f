"""A pixel decoder on a pretrained generative prior: the autoencoder decoder to 1/4 resolution,
then Real-ESRGAN's ×4 generator.

    latent ─ autoencoder decoder layers [:head_layers] (frozen, not stored) ─ features at 1/4
        ├─ 1×1 conv ─ RGB at 1/4 ─ Real-ESRGAN generator ─ image
        └─ 3×3 conv (zero-initialised) ─ added to the generator's first activations
    (then, optionally, a fixed notch at the latent grid's frequencies: grid_notch.py)

The autoencoder's own upsampling to full resolution (its pixel shuffles, the source of the
checkerboard its decodes carried) is replaced by a generator pretrained on real-world photos
(`realesrgan.pretrained`) and fine-tuned here on the codec's decodes. The colour projection starts
as a least-squares fit of the features to the 1/4-resolution targets (`fit_colour_projection`),
so that at initialisation the generator restores a plausible small picture; the feature path
starts at zero and learns what the small picture cannot carry. Only the projection, the
feature path and the generator are stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from versacodec.errors import ModelError
from versacodec.latent_space.autoencoder import Autoencoder, AutoencoderConfig, Decoder
from versacodec.pixel_decoders.base import PixelDecoder
from versacodec.pixel_decoders.grid_notch import GridNotch
from versacodec.pixel_decoders.realesrgan.networks import RRDBConfig, RRDBNet, SRVGGConfig, SRVGGNetCompact

NETWORKS = ("srvgg", "rrdb")


@dataclass(frozen=True)
class RestorationDecoderConfig:
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    head_layers: int = 10  # autoencoder decoder layers run as they are (to 1/4 resolution for f = 8)
    network: str = "srvgg"  # "srvgg" (realesr-general-x4v3) or "rrdb" (RealESRGAN_x4plus)
    srvgg: SRVGGConfig = field(default_factory=SRVGGConfig)
    rrdb: RRDBConfig = field(default_factory=RRDBConfig)
    grid_notch: bool = False  # a fixed notch at the latent grid's frequencies on the output (grid_notch.py)

    def __post_init__(self) -> None:
        if self.network not in NETWORKS:
            raise ModelError(f"network must be one of {', '.join(NETWORKS)}, not {self.network!r}")
        layers = len(Decoder(self.autoencoder))
        if not 0 < self.head_layers < layers:
            raise ModelError(f"head_layers must lie in (0, {layers}), not {self.head_layers}")

    @property
    def scale(self) -> int:
        return self.srvgg.scale if self.network == "srvgg" else RRDBNet.scale

    @property
    def features(self) -> int:
        return self.srvgg.features if self.network == "srvgg" else self.rrdb.features


def head_shape(config: AutoencoderConfig, head_layers: int) -> tuple[int, int]:
    """(channels, upsampling factor) of the autoencoder decoder's first `head_layers` layers."""
    probe = torch.zeros(1, config.latent_channels, 1, 1)
    with torch.no_grad():
        out = nn.Sequential(*list(Decoder(config))[:head_layers])(probe)
    return out.shape[1], out.shape[-1]


class RestorationDecoder(PixelDecoder):
    config_class = RestorationDecoderConfig

    def __init__(self, config: RestorationDecoderConfig) -> None:
        super().__init__(config)
        channels, upsampling = head_shape(config.autoencoder, config.head_layers)
        if upsampling * config.scale != config.autoencoder.factor:
            raise ModelError(f"the head ends at 1/{config.autoencoder.factor // upsampling} resolution; "
                             f"a ×{config.scale} generator needs it at 1/{config.scale}")
        self.colour = nn.Conv2d(channels, 3, 1)
        self.features = nn.Conv2d(channels, config.features, 3, padding=1)
        nn.init.zeros_(self.features.weight)
        nn.init.zeros_(self.features.bias)
        self.generator = SRVGGNetCompact(config.srvgg) if config.network == "srvgg" else RRDBNet(config.rrdb)
        # The generator's ×4 pixel shuffle and the head's ×2 one can draw patterns locked to the
        # latent grid that the losses reward; the notch takes them out, in training too.
        self.notch = GridNotch(config.autoencoder.factor) if config.grid_notch else nn.Identity()

    def head(self, autoencoder: Autoencoder, latents: torch.Tensor) -> torch.Tensor:
        raw = latents * autoencoder.latent_std + autoencoder.latent_mean
        for layer in list(autoencoder.decoder)[: self.config.head_layers]:
            raw = layer(raw)
        return raw

    def render(self, features: torch.Tensor) -> torch.Tensor:
        """Head features → image in [0, 1] (unclamped)."""
        return self.notch(self.generator(self.colour(features), self.features(features)))

    def forward(self, autoencoder: Autoencoder, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents → image in [0, 1] (unclamped, for training)."""
        return self.render(self.head(autoencoder, latents))

    @torch.no_grad()
    def fit_colour_projection(self, features: torch.Tensor, small_targets: torch.Tensor) -> float:
        """Least-squares fit of the 1×1 colour projection: head features (N, C, h, w) → the targets
        at the same resolution (N, 3, h, w). Returns the fit's RMS error."""
        x = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1]).double()
        x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
        y = small_targets.permute(0, 2, 3, 1).reshape(-1, 3).double()
        solution = torch.linalg.lstsq(x, y).solution
        self.colour.weight.copy_(solution[:-1].T.reshape(self.colour.weight.shape).float())
        self.colour.bias.copy_(solution[-1].float())
        return float((x @ solution - y).square().mean().sqrt())
