"""What coding one image costs, known from its size before anything of that size is allocated: the
memory it takes (`memory_estimate`, a `limits.MemoryEstimate`) and the fewest bytes its stream
can have (`stream_floor`). Both are computed here from the model and recorded in its bundle.json.

The estimate is an upper bound, not a measurement (tests/test_fuzz.py checks it against real
peaks). It assumes every convolution unfolds its input (in_channels × k² values per output
position), as torch's native kernels do for the float64 coding networks (oneDNN, which the
float32 networks use for k > 1, needs less). The latent space and every network of the latent
codec run in tiles, whose unfolded activations are fixed costs; what grows with the image is its
full-resolution copies and the whole-image tensors on y's grid that the context model and the
range coder hold (the order in which the coder writes symbols spans the whole image). The two
phases, latent space and latent codec, do not overlap.
"""

from __future__ import annotations

import math

from versacodec.entropy.range_coder import TableSet
from versacodec.entropy.tables import PRECISION
from versacodec.latent_codec.model import HYPER_HALO, LatentCodec, LatentCodecConfig
from versacodec.latent_codec.transforms import LATENT_TO_Y_STRIDE, Y_TO_Z_STRIDE
from versacodec.latent_space.base import LatentSpace
from versacodec.limits import MemoryEstimate, StreamFloor

LATENT_SPACE_TILE = 96  # latent pixels (768 image pixels at f = 8) per tile when coding large images
LATENT_SPACE_OVERLAP = 8
# Per pixel of the padded image: float32 RGB copies (input, padding, tile-blend accumulator and
# weights, output) and 8-bit copies while the latent space runs; of them the image and its padded
# copy (float32) live on through the latent codec's phase.
FULL_RESOLUTION_BYTES = 64
IMAGE_BYTES = 32
# Whole-image float64 tensors of y's channels alive at once while the latent codec codes (y, its
# gained copy, the hyperprior's features, ŷ so far and its next copy, a channel group's predictions,
# means, scales and symbols), with the allocator's fragmentation: an all-zero 5000x5000 encode held
# about 20 (3.1 GiB above the loaded model, 2026-12-07), a 2560x2560 one 22.
LIVE_Y_TENSORS = 24
LIVE_ACTIVATIONS = 4  # activations a residual stack holds at once (input, hidden, output, skip)


def memory_estimate(block: int, latent_space: LatentSpace, codec: LatentCodecConfig) -> MemoryEstimate:
    """The numbers of the peak-memory bound of coding one image with this model: the latent
    codec's phase (whole-image copies, the y tensors it holds, one tile of its networks, where the
    float64 5×5 spatial context is the widest unfold) or the latent space's (full-resolution
    copies and one tile of its network), whichever is larger."""
    factor = latent_space.factor
    return MemoryEstimate(
        block=block, y_cell=factor * LATENT_TO_Y_STRIDE, full_resolution_bytes=FULL_RESOLUTION_BYTES,
        image_bytes=IMAGE_BYTES, y_position_bytes=8 * codec.y_channels * LIVE_Y_TENSORS,
        coding_tile_positions=(LatentCodec.coding_tile + 2 * HYPER_HALO) ** 2,
        coding_tile_position_bytes=8 * max(codec.groups) * 25,
        latent_tile_pixels=((LATENT_SPACE_TILE + 2 * LATENT_SPACE_OVERLAP) * factor) ** 2,
        latent_tile_pixel_bytes=float(4 * latent_space.peak_channels_per_pixel * (9 + LIVE_ACTIVATIONS)))


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
