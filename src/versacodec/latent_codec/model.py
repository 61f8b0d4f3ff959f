"""The latent codec: autoencoder latent → y (+ side information z) → bits, and back.

CompressAI's model API: `forward` returns the reconstruction and likelihoods for training;
`compress` returns strings and shapes; `decompress` inverts it; `build_tables()` freezes the
entropy tables and quality gains once after training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from versacodec.entropy.factorized import FactorizedDensity
from versacodec.entropy.fixed_point import exact_mode, to_grid
from versacodec.entropy.gaussian import GaussianConditional
from versacodec.entropy.range_coder import SymbolReader, SymbolWriter
from versacodec.errors import StreamError
from versacodec.latent_codec.context import GroupParameters, checkerboard
from versacodec.latent_codec.gain import GainUnits
from versacodec.latent_codec.transforms import (
    LATENT_TO_Y_STRIDE,
    Y_TO_Z_STRIDE,
    Analysis,
    HyperAnalysis,
    HyperSynthesis,
    Synthesis,
)
from versacodec.modeling import PretrainedModule


@dataclass(frozen=True)
class LatentCodecConfig:
    latent_channels: int = 16
    width: int = 192
    blocks: int = 2
    y_channels: int = 160
    z_channels: int = 64
    hyper_width: int = 128
    groups: tuple[int, ...] = (8, 8, 16, 32, 96)
    context_hidden: int = 96
    rate_levels: int = 6
    quality_levels: int = 101
    initial_gain_range: tuple[float, float] = (0.2, 2.0)

    def __post_init__(self) -> None:
        if sum(self.groups) != self.y_channels:
            raise ValueError(f"channel groups {self.groups} must sum to y_channels={self.y_channels}")


class LatentCodecOutput(NamedTuple):
    latent_hat: torch.Tensor
    likelihoods: dict[str, torch.Tensor]  # "y", "z"


class CompressedLatent(NamedTuple):
    hyperprior: bytes
    latent: bytes
    y_shape: tuple[int, int]  # (height, width) of y; z is y / Y_TO_Z_STRIDE


class LatentCodec(PretrainedModule):
    config_class = LatentCodecConfig
    block_size = LATENT_TO_Y_STRIDE * Y_TO_Z_STRIDE  # latent sides must be multiples of this

    def __init__(self, config: LatentCodecConfig) -> None:
        super().__init__(config)
        c = config
        self.analysis = Analysis(c.latent_channels, c.width, c.y_channels, c.blocks)
        self.synthesis = Synthesis(c.y_channels, c.width, c.latent_channels, c.blocks)
        self.hyper_analysis = HyperAnalysis(c.y_channels, c.hyper_width, c.z_channels)
        self.hyper_synthesis = HyperSynthesis(c.z_channels, c.hyper_width, c.y_channels)
        self.hyper_density = FactorizedDensity(c.z_channels)
        self.gaussian = GaussianConditional()
        offsets = [0, *torch.cumsum(torch.tensor(c.groups), 0).tolist()]
        self.group_slices = [slice(offsets[i], offsets[i + 1]) for i in range(len(c.groups))]
        self.group_parameters = torch.nn.ModuleList(
            GroupParameters(2 * c.y_channels, offsets[i], size, c.context_hidden) for i, size in enumerate(c.groups)
        )
        low, high = c.initial_gain_range
        initial = torch.linspace(math.log(low), math.log(high), c.rate_levels)
        self.gains = GainUnits(c.rate_levels, c.y_channels, c.z_channels, c.quality_levels, initial)

    # ---------------------------------------------------------------- training
    def forward(self, latent: torch.Tensor, level: torch.Tensor) -> LatentCodecOutput:
        """`level`: (B,) continuous rate levels in [0, rate_levels − 1]."""
        gains = self.gains.interpolate(level)
        y = self.analysis(latent)
        z = self.hyper_analysis(y)
        z_hat, z_likelihood = self.hyper_density(z * gains["hyper_gain"])
        hyper = self.hyper_synthesis(z_hat * gains["hyper_inverse_gain"])
        y_gained = y * gains["gain"]
        anchor = checkerboard(*y.shape[-2:], device=y.device)
        decoded, likelihoods = [], []
        for parameters, group in zip(self.group_parameters, self.group_slices, strict=True):
            gain, inverse = gains["gain"][:, group], gains["inverse_gain"][:, group]
            channel = parameters.channel_features(torch.cat(decoded, 1) if decoded else None)
            means, scales = parameters(hyper, channel, None)
            anchor_hat, anchor_likelihood = self.gaussian(y_gained[:, group], scales * gain, means * gain)
            anchors = anchor_hat * inverse * anchor
            means, scales = parameters(hyper, channel, anchors)
            other_hat, other_likelihood = self.gaussian(y_gained[:, group], scales * gain, means * gain)
            decoded.append(torch.where(anchor, anchor_hat, other_hat) * inverse)
            likelihoods.append(torch.where(anchor, anchor_likelihood, other_likelihood))
        latent_hat = self.synthesis(torch.cat(decoded, 1))
        return LatentCodecOutput(latent_hat, {"y": torch.cat(likelihoods, 1), "z": z_likelihood})

    @torch.no_grad()
    def build_tables(self) -> None:
        """Freeze the hyper-latent density into integer tables and store the quality gains."""
        self.hyper_density.build_tables()
        self.gains.build_quality_table()

    # ---------------------------------------------------------------- coding
    @torch.no_grad()
    def compress(self, latent: torch.Tensor, quality: int) -> CompressedLatent:
        """Code one latent (1, C, h, w), h and w multiples of `block_size`."""
        return self.compress_analysed(self.analyse(latent), quality)

    @torch.no_grad()
    def analyse(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The quality-independent part of encoding (rate control reuses it): (y, z)."""
        if latent.shape[0] != 1:
            raise ValueError("compress codes one latent at a time")
        y = self.analysis(latent)
        return y, self.hyper_analysis(y)

    @torch.no_grad()
    def compress_analysed(self, analysed: tuple[torch.Tensor, torch.Tensor], quality: int) -> CompressedLatent:
        y, z = analysed
        gains = self.gains.for_quality(quality)
        with exact_mode():
            z_writer = SymbolWriter()
            z_hat = self.hyper_density.write(z_writer, z.double() * gains["hyper_gain"])
            hyper = self.hyper_synthesis(to_grid(z_hat * gains["hyper_inverse_gain"]))
            y_writer = SymbolWriter()
            self._code_groups(hyper, gains, y_writer.write_gaussian(self.gaussian, y.double() * gains["gain"]))
        return CompressedLatent(z_writer.getvalue(), y_writer.getvalue(), tuple(y.shape[-2:]))

    @torch.no_grad()
    def decompress(self, compressed: CompressedLatent, quality: int) -> torch.Tensor:
        gains = self.gains.for_quality(quality)
        height, width = compressed.y_shape
        z_shape = (1, self.config.z_channels, height // Y_TO_Z_STRIDE, width // Y_TO_Z_STRIDE)
        try:
            with exact_mode():
                z_hat = self.hyper_density.read(SymbolReader(compressed.hyperprior), z_shape)
                hyper = self.hyper_synthesis(to_grid(z_hat * gains["hyper_inverse_gain"]))
                reader = SymbolReader(compressed.latent)
                y_hat = self._code_groups(hyper, gains, reader.gaussian_source(self.gaussian))
        except (ValueError, RuntimeError, OverflowError) as exc:
            raise StreamError(f"corrupted: entropy-coded data does not decode ({exc})") from exc
        return self.synthesis(y_hat.float())

    def _code_groups(self, hyper: torch.Tensor, gains: dict[str, torch.Tensor], coder) -> torch.Tensor:
        """Walk the groups and checkerboard halves in coding order; `coder(group, scales, means,
        mask)` writes or reads the masked elements (gained domain) and returns ŷ there."""
        anchor = checkerboard(*hyper.shape[-2:])
        decoded: list[torch.Tensor] = []
        for parameters, group in zip(self.group_parameters, self.group_slices, strict=True):
            gain, inverse = gains["gain"][:, group], gains["inverse_gain"][:, group]
            channel = parameters.channel_features(torch.cat(decoded, 1) if decoded else None)
            halves = []
            anchors = None
            for mask in (anchor, ~anchor):
                means, scales = parameters(hyper, channel, anchors)
                means = to_grid(means * gain)
                mask = mask.expand(1, group.stop - group.start, *hyper.shape[-2:])
                half = coder(group, scales * gain, means, mask)
                halves.append(half)
                anchors = to_grid(half * inverse)
            decoded.append(to_grid((halves[0] + halves[1]) * inverse))
        return torch.cat(decoded, 1)
