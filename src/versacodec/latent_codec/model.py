"""The latent codec: autoencoder latent → y (+ side information z) → bits, and back.

CompressAI's model API: `forward` returns the reconstruction and likelihoods for training;
`compress` returns strings and shapes; `decompress` inverts it; `build_tables()` freezes the
entropy tables and quality gains once after training. `estimate_bits` says what `compress` would
write, from the entropy model's likelihoods, for a fraction of its cost (rate control).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from versacodec.entropy.factorized import FactorizedDensity
from versacodec.entropy.fixed_point import exact_mode, to_grid
from versacodec.entropy.gaussian import GaussianConditional
from versacodec.entropy.range_coder import SymbolReader, SymbolWriter
from versacodec.entropy.tables import PRECISION
from versacodec.errors import StreamError
from versacodec.latent_codec.context import GroupParameters, checkerboard
from versacodec.latent_codec.gain import GainUnits
from versacodec.latent_codec.quality_map import QualityMap
from versacodec.latent_codec.transforms import (
    LATENT_TO_Y_STRIDE,
    Y_TO_Z_STRIDE,
    Analysis,
    HyperAnalysis,
    HyperSynthesis,
    Synthesis,
    linear_paths,
)
from versacodec.modeling import PretrainedModule
from versacodec.progress import stage
from versacodec.tiling import tiled_exact


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
    linear_path: bool = False  # transforms.LinearPath: v5's codecs on TAEF2 latents need it for the upper rates

    def __post_init__(self) -> None:
        if sum(self.groups) != self.y_channels:
            raise ValueError(f"channel groups {self.groups} must sum to y_channels={self.y_channels}")


class LatentCodecOutput(NamedTuple):
    latent_hat: torch.Tensor
    likelihoods: dict[str, torch.Tensor]  # "y", "z"


# The least a coding table gives any value it holds: estimates charge no symbol more (values past
# the table's edge, which an escape code sends, are rare enough not to matter).
MIN_PROBABILITY = 2.0**-PRECISION


class LatentBits(NamedTuple):
    """Estimated bits of each coded string of `compress_analysed` (real strings are whole 32-bit words)."""

    hyperprior: float
    parts: tuple[float, ...]


class CompressedLatent(NamedTuple):
    """Strings and shapes of one coded latent.

    `parts` are the coded passes over y: with no regions a single part (everything); with region
    sets, one part per set and then the background. A part may be None (dropped from a partial
    stream): its positions are then filled with the entropy model's predicted means."""

    hyperprior: bytes
    parts: tuple[bytes | None, ...]
    y_shape: tuple[int, int]  # (height, width) of y; z is y / Y_TO_Z_STRIDE
    regions: tuple[torch.Tensor, ...] = ()  # (h, w) bool masks of the region sets, on y's grid
    quality_map: QualityMap | None = None  # y's quality where it differs from the stream's

    def sent_positions(self) -> torch.Tensor | None:
        """(h, w) bool: the y positions whose parts are present; None when none is missing."""
        if all(part is not None for part in self.parts):
            return None
        regions = disjoint_regions(self.regions, self.y_shape)
        sent = torch.zeros(self.y_shape, dtype=torch.bool)
        for part, mask in zip(self.parts, regions, strict=False):
            if part is not None:
                sent |= mask
        if self.parts[-1] is not None:  # the background: what no region set covers
            sent |= ~torch.stack(regions).any(0) if regions else torch.ones_like(sent)
        return sent


# The halos, in y positions, that cover each coding network's receptive field: the context
# networks' two 3x3 or one 5x5 convolutions reach 2; the hyperprior's (3x3, then two 5x5 of
# stride 2, or their transposes) under 8, which is also 2 of z's positions.
CONTEXT_HALO = 2
HYPER_HALO = 2 * Y_TO_Z_STRIDE


class LatentCodec(PretrainedModule):
    config_class = LatentCodecConfig
    block_size = LATENT_TO_Y_STRIDE * Y_TO_Z_STRIDE  # latent sides must be multiples of this
    # The transforms and context networks run in tiles of this many y positions a side (1024 image
    # pixels at f = 8) with halos that cover their receptive fields, so that their memory, which
    # unfolding convolutions in float64 makes the largest of an encode, is bounded by the tile
    # rather than the image. A multiple of Y_TO_Z_STRIDE. The context networks are exact, so tiled
    # coding writes the same symbols; the float analysis and synthesis agree within rounding.
    coding_tile = 64

    def __init__(self, config: LatentCodecConfig) -> None:
        super().__init__(config)
        c = config
        self.analysis: nn.Module = Analysis(c.latent_channels, c.width, c.y_channels, c.blocks)
        self.synthesis: nn.Module = Synthesis(c.y_channels, c.width, c.latent_channels, c.blocks)
        if c.linear_path:
            self.analysis, self.synthesis = linear_paths(self.analysis, self.synthesis, c.latent_channels,
                                                         c.y_channels)
        self.hyper_analysis = HyperAnalysis(c.y_channels, c.hyper_width, c.z_channels)
        self.hyper_synthesis = HyperSynthesis(c.z_channels, c.hyper_width, c.y_channels)
        self.hyper_density = FactorizedDensity(c.z_channels)
        self.gaussian = GaussianConditional()
        offsets = [0, *torch.cumsum(torch.tensor(c.groups), 0).tolist()]
        self.group_slices = [slice(offsets[i], offsets[i + 1]) for i in range(len(c.groups))]
        self.group_parameters = torch.nn.ModuleList(
            GroupParameters(c.y_channels, offsets[i], size, c.context_hidden) for i, size in enumerate(c.groups)
        )
        low, high = c.initial_gain_range
        initial = torch.linspace(math.log(low), math.log(high), c.rate_levels)
        self.gains = GainUnits(c.rate_levels, c.y_channels, c.z_channels, c.quality_levels, initial)

    # ---------------------------------------------------------------- training
    def forward(self, latent: torch.Tensor, level: torch.Tensor, keep: torch.Tensor | None = None
                ) -> LatentCodecOutput:
        """`level`: (B,) continuous rate levels in [0, rate_levels − 1]. `keep`: (B, 1, h, w) bool on
        y's grid, positions transmitted; the others take the predicted mean and cost no bits, as in
        a partial stream (DISCOVER stage II).

        The context model runs through `_code_pass`, the loop that coding runs, with the training
        quantiser (noise for the likelihoods, straight-through rounding for ŷ) as its coder, so
        training and coding cannot drift apart."""
        gains = self.gains.interpolate(level)
        y = self.analysis(latent)
        z = self.hyper_analysis(y)
        z_hat, z_likelihood = self.hyper_density(z * gains["hyper_gain"])
        hyper = self.hyper_synthesis(z_hat * gains["hyper_inverse_gain"])
        y_gained = y * gains["gain"]
        likelihoods: dict[int, torch.Tensor] = {}  # per group (its first channel), both halves so far

        def quantise(group: slice, scales: torch.Tensor, means: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            hat, likelihood = self.gaussian(y_gained[:, group], scales, means)
            if keep is not None:  # not transmitted: the predicted mean, at no cost
                hat = torch.where(keep, hat, means)
                likelihood = torch.where(keep, likelihood, torch.ones_like(likelihood))
            likelihoods[group.start] = torch.where(mask, likelihood, likelihoods.get(group.start, likelihood))
            return hat

        everywhere = torch.ones(1, 1, *y.shape[-2:], dtype=torch.bool, device=y.device)
        decoded = self._code_pass(hyper, gains, quantise, everywhere, everywhere, torch.zeros_like(y_gained),
                                  grid=_unchanged)
        y_likelihood = torch.cat([likelihoods[group.start] for group in self.group_slices], 1)
        return LatentCodecOutput(self.synthesis(decoded), {"y": y_likelihood, "z": z_likelihood})

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
        y = self._tiled(self.analysis, (latent,), self._transform_halo, (LATENT_TO_Y_STRIDE,), 1)
        return y, self._hyper_analysis(y)

    @torch.no_grad()
    def compress_analysed(self, analysed: tuple[torch.Tensor, torch.Tensor], quality: int,
                          regions: tuple[torch.Tensor, ...] = (),
                          quality_map: QualityMap | None = None) -> CompressedLatent:
        """Code y at `quality`, or where `quality_map` says at its quality (z stays at `quality`).
        With `regions` ((h, w) bool masks on y's grid), each region set becomes its own part,
        decodable without the others or the background."""
        y, z = analysed
        regions = disjoint_regions(regions, tuple(y.shape[-2:]))
        gains = self._gains(quality, quality_map, tuple(y.shape[-2:]))
        with exact_mode():
            z_writer = SymbolWriter()
            z_hat = self.hyper_density.write(z_writer, z.double() * gains["hyper_gain"])
            hyper = self._hyper_synthesis(to_grid(z_hat * gains["hyper_inverse_gain"]))
            y_gained = y.double() * gains["gain"]
            decoded = torch.zeros_like(y_gained)
            parts = []
            for positions, visible in self._passes(regions, y.shape[-2:]):
                writer = SymbolWriter()
                decoded = self._code_pass(hyper, gains, writer.write_gaussian(self.gaussian, y_gained), positions,
                                          visible, decoded)
                parts.append(writer.getvalue())
        return CompressedLatent(z_writer.getvalue(), tuple(parts), tuple(y.shape[-2:]), regions, quality_map)

    @torch.no_grad()
    def estimate_bits(self, analysed: tuple[torch.Tensor, torch.Tensor], quality: int,
                      regions: tuple[torch.Tensor, ...] = (), quality_map: QualityMap | None = None) -> LatentBits:
        """The information content of what `compress_analysed` would code, without coding: the
        same passes and contexts in float32 rather than exact arithmetic, each quantised symbol
        costing −log₂ of its likelihood. Within a fraction of a percent of the real strings."""
        y, z = analysed
        regions = disjoint_regions(regions, tuple(y.shape[-2:]))
        gains = {name: gain.float() for name, gain in self._gains(quality, quality_map, tuple(y.shape[-2:])).items()}
        z_hat = torch.round(z * gains["hyper_gain"])
        hyperprior = float(-self.hyper_density.likelihood(z_hat).log2().sum())
        hyper = self._hyper_synthesis(z_hat * gains["hyper_inverse_gain"])
        y_gained = y * gains["gain"]
        decoded = torch.zeros_like(y_gained)
        parts = []
        for positions, visible in self._passes(regions, y.shape[-2:]):
            bits: list[torch.Tensor] = []

            def count(group, scales, means, mask, bits=bits):
                y_hat = torch.round(y_gained[:, group] - means) + means
                likelihood = self.gaussian.likelihood(y_hat, scales, means).clamp_min(MIN_PROBABILITY)
                bits.append(torch.where(mask, -likelihood.log2(), 0.0).sum())
                return torch.where(mask, y_hat, 0.0)

            decoded = self._code_pass(hyper, gains, count, positions, visible, decoded, grid=_unchanged)
            parts.append(float(sum(bits)))
        return LatentBits(hyperprior, tuple(parts))

    @torch.no_grad()
    def decompress(self, compressed: CompressedLatent, quality: int) -> torch.Tensor:
        """ẑ from whatever parts are present; missing ones are filled with predicted means."""
        return self._tiled(self.synthesis, (self.decode_y(compressed, quality).float(),), self._transform_halo, (1,),
                           LATENT_TO_Y_STRIDE)

    @torch.no_grad()
    def decode_y(self, compressed: CompressedLatent, quality: int) -> torch.Tensor:
        gains = self._gains(quality, compressed.quality_map, compressed.y_shape)
        height, width = compressed.y_shape
        z_shape = (1, self.config.z_channels, height // Y_TO_Z_STRIDE, width // Y_TO_Z_STRIDE)
        passes = self._passes(disjoint_regions(compressed.regions, (height, width)), (height, width))
        if len(compressed.parts) != len(passes):
            raise StreamError(f"stream has {len(compressed.parts)} latent parts for {len(passes)} passes")
        *region_parts, background = compressed.parts
        if background is not None and any(part is None for part in region_parts):
            raise StreamError("the background section needs every region section; this stream lacks some")
        try:
            with exact_mode():
                z_hat = self.hyper_density.read(SymbolReader(compressed.hyperprior), z_shape)
                hyper = self._hyper_synthesis(to_grid(z_hat * gains["hyper_inverse_gain"]))
                decoded = torch.zeros(1, self.config.y_channels, height, width, dtype=torch.float64)
                known = torch.zeros(1, 1, height, width, dtype=torch.bool)
                for part, (positions, visible) in zip(compressed.parts, passes, strict=True):
                    if part is not None:
                        reader = SymbolReader(part)
                        decoded = self._code_pass(hyper, gains, reader.gaussian_source(self.gaussian), positions,
                                                  visible, decoded)
                        known |= positions
                if not bool(known.all()):
                    decoded = self._code_pass(hyper, gains, None, ~known, known | ~known, decoded)
        except (ValueError, RuntimeError, OverflowError) as exc:
            raise StreamError(f"corrupted: entropy-coded data does not decode ({exc})") from exc
        return decoded

    @property
    def _transform_halo(self) -> int:
        """y positions the analysis or synthesis reaches: a 3x3 convolution at each end, two in each
        residual block, and the synthesis's last one at the latent's resolution (half a position)."""
        return 3 + 2 * self.config.blocks

    def _tiled(self, function, inputs: tuple[torch.Tensor, ...], halo: int, scales: tuple[int, ...],
               output_scale: int, unit: int = 1) -> torch.Tensor:
        """`function` in tiles of `coding_tile` y positions (`tiling.tiled_exact`); `unit`: y
        positions per unit of the grid the tiles are cut on (Y_TO_Z_STRIDE for z's)."""
        return tiled_exact(function, inputs, self.coding_tile // unit, -(-halo // unit), scales, output_scale)

    def _context(self, network, *inputs: torch.Tensor | None) -> torch.Tensor:
        """A context network on y's grid, in tiles; inputs given as None reach it as None."""
        given = [x for x in inputs if x is not None]

        def run(*tiles: torch.Tensor) -> torch.Tensor:
            remaining = iter(tiles)
            return network(*(None if x is None else next(remaining) for x in inputs))

        return self._tiled(run, tuple(given), CONTEXT_HALO, (1,) * len(given), 1)

    def _hyper_analysis(self, y: torch.Tensor) -> torch.Tensor:
        return self._tiled(self.hyper_analysis, (y,), HYPER_HALO, (Y_TO_Z_STRIDE,), 1, unit=Y_TO_Z_STRIDE)

    def _hyper_synthesis(self, z_hat: torch.Tensor) -> torch.Tensor:
        return self._tiled(self.hyper_synthesis, (z_hat,), HYPER_HALO, (1,), Y_TO_Z_STRIDE, unit=Y_TO_Z_STRIDE)

    def _gains(self, quality: int, quality_map: QualityMap | None, grid: tuple[int, int]) -> dict[str, torch.Tensor]:
        qualities = None if quality_map is None else quality_map.qualities(quality, grid, self.config.quality_levels)
        return self.gains.for_quality(quality, qualities)

    @staticmethod
    def _passes(regions: tuple[torch.Tensor, ...], shape) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(positions coded, positions the contexts may see) per pass: each region set sees only
        itself; the last pass (everything, or the background) sees all."""
        everything = torch.ones(1, 1, *shape, dtype=torch.bool)
        passes = [(mask.view(1, 1, *shape), mask.view(1, 1, *shape)) for mask in regions]
        covered = torch.zeros_like(everything)
        for mask in regions:
            covered |= mask.view(1, 1, *shape)
        passes.append((~covered, everything))
        return passes

    def _code_pass(self, hyper: torch.Tensor, gains: dict[str, torch.Tensor], coder, positions: torch.Tensor,
                   visible: torch.Tensor, decoded: torch.Tensor, grid=to_grid) -> torch.Tensor:
        """The context model, for coding, estimating and training alike: y at `positions`
        (1, 1, h, w) group by group and checkerboard half by half, with contexts drawn from
        `decoded` (un-gained ŷ so far, (B, C, h, w)) where `visible`. Returns `decoded` with these
        positions filled in (a new tensor, so that training can differentiate through it).

        `coder(group, scales, means, mask)` writes, reads or quantises the masked elements (gained
        domain) and returns ŷ there (anything elsewhere); coder None fills them with the predicted
        means. `grid` rounds values onto the exact arithmetic's grid (estimates and training leave
        them as they are)."""
        anchor = checkerboard(*hyper.shape[-2:], device=hyper.device)
        # A large image's coding takes tens of seconds after the latent space's tiles: say so.
        done = stage("latent coding", 2 * len(self.group_slices)) if coder is not None else None
        for parameters, group in zip(self.group_parameters, self.group_slices, strict=True):
            gain, inverse = gains["gain"][:, group], gains["inverse_gain"][:, group]
            previous = decoded[:, : group.start] * visible if group.start else None
            base = self._context(parameters.prepare, hyper, previous)
            group_hat, spatial = decoded[:, group], None
            for half in (anchor, ~anchor):
                means, scales = self._context(parameters, base, spatial).chunk(2, 1)
                means = grid(means * gain)
                mask = (half & positions).expand(1, group.stop - group.start, *hyper.shape[-2:])
                values = torch.where(mask, means, 0.0) if coder is None else coder(group, scales * gain, means, mask)
                group_hat = torch.where(mask, grid(values * inverse), group_hat)
                spatial = group_hat * (anchor & visible)
                if done is not None:
                    done()
            decoded = torch.cat((decoded[:, : group.start], group_hat, decoded[:, group.stop:]), 1)
        return decoded


def _unchanged(values: torch.Tensor) -> torch.Tensor:
    return values


def disjoint_regions(regions: tuple[torch.Tensor, ...], shape: tuple[int, int]) -> tuple[torch.Tensor, ...]:
    """Region masks as bool (h, w), each without the positions an earlier set already claims."""
    claimed = torch.zeros(shape, dtype=torch.bool)
    out = []
    for mask in regions:
        mask = mask.to(torch.bool).reshape(shape) & ~claimed
        claimed |= mask
        out.append(mask)
    return tuple(out)
