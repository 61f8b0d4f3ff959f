"""What coding one image costs, known from its size before anything of that size is allocated: the
memory it takes (`working_memory`) and the fewest bytes its stream can have (`stream_floor`).

The estimate is an upper bound, not a measurement (tests/test_fuzz.py checks it against real
peaks). It assumes every convolution unfolds its input (in_channels × k² values per output
position), as torch's native kernels do; oneDNN, which the float32 networks use for k > 1, needs
less. Full-resolution buffers and the latent codec's whole-image tensors grow with the pixel
count; the latent space runs in tiles, whose unfolded activations are the largest fixed cost. The
two phases do not overlap.
"""

from __future__ import annotations

import math

from versacodec.entropy.range_coder import TableSet
from versacodec.entropy.tables import PRECISION
from versacodec.latent_codec.model import LatentCodec, LatentCodecConfig
from versacodec.latent_codec.transforms import LATENT_TO_Y_STRIDE, Y_TO_Z_STRIDE
from versacodec.latent_space.base import LatentSpace
from versacodec.limits import StreamFloor

LATENT_SPACE_TILE = 96  # latent pixels (768 image pixels at f = 8) per tile when coding large images
LATENT_SPACE_OVERLAP = 8
# Per pixel of the padded image: float32 RGB copies (input, padding, tile-blend accumulator and
# weights, output) and 8-bit copies, of which the image itself (input and its padded copy, and the
# 8-bit copies the tagger and the quality map read) lives through the latent codec's phase. At 32
# bytes an all-zero 5000x5000 encode peaked 4.5 % above the estimate (4306 MiB above the loaded
# model, benchmarks/abuse.py on 2026-12-07); 56 leaves it 9 % below.
FULL_RESOLUTION_BYTES = 64
IMAGE_BYTES = 56
LIVE_ACTIVATIONS = 4  # activations a residual stack holds at once (input, hidden, output, skip)


def working_memory(width: int, height: int, block: int, latent_space: LatentSpace,
                   codec: LatentCodecConfig) -> int:
    """Estimated peak bytes to code a width × height image padded to multiples of `block`."""
    padded = math.ceil(width / block) * math.ceil(height / block) * block**2
    factor = latent_space.factor
    y_pixels = padded / (factor * LATENT_TO_Y_STRIDE) ** 2
    # float64 coding networks (the 5×5 spatial context is the widest unfold), float32 synthesis
    coding = 8 * (max(codec.groups) * 25 + LIVE_ACTIVATIONS * (codec.y_channels + 2 * codec.context_hidden))
    synthesis = 4 * codec.width * (9 + LIVE_ACTIVATIONS)
    tile_pixels = min(padded, ((LATENT_SPACE_TILE + 2 * LATENT_SPACE_OVERLAP) * factor) ** 2)
    tile = tile_pixels * 4 * latent_space.peak_channels_per_pixel * (9 + LIVE_ACTIVATIONS)
    return int(max(padded * IMAGE_BYTES + y_pixels * (coding + synthesis), padded * FULL_RESOLUTION_BYTES + tile))


def stream_floor(block: int, latent_space: LatentSpace, codec: LatentCodec) -> StreamFloor:
    """The fewest bytes any stream of this model can have, per image size (`StreamFloor`), from
    its integer tables: z's per channel, and for y the best of the Gaussian tables."""
    y_cell = latent_space.factor * LATENT_TO_Y_STRIDE
    return StreamFloor(block, y_cell, y_cell * Y_TO_Z_STRIDE, codec.config.y_channels,
                       min(_cheapest_bits(codec.gaussian.tables())), sum(_cheapest_bits(codec.hyper_density.tables())))


def _cheapest_bits(tables: TableSet) -> list[float]:
    """Per table row, the information content of its most probable symbol."""
    return [PRECISION - math.log2(float(row[:length].max())) for row, length in zip(tables.pmf, tables.lengths,
                                                                                   strict=True)]
