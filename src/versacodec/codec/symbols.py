"""The entropy-decoded symbols of a stream: what is identical on every machine.

Everything the range coder reads is an integer chosen by exact arithmetic (integer tables, and
context networks evaluated in fixed point, `entropy.fixed_point`), so a stream's symbols are the
same on every CPU, instruction set and thread count. What the float networks make of them after
that (the synthesis's latent, the pixel decoders' pixels) depends on the CPU's kernels within a
small tolerance (docs/api.md, "Determinism"). Tests and users who need a bit-exact fingerprint of a
decode hash these symbols, never the float results.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np
import torch

from versacodec.entropy.fixed_point import ACTIVATION_BITS
from versacodec.entropy.range_coder import SymbolReader
from versacodec.layers.palette import read_level

if TYPE_CHECKING:
    from versacodec.codec.pipeline import Codec


def stream_symbols(codec: Codec, data: bytes) -> np.ndarray:
    """Every symbol `codec` decodes from `data`, as one int64 array: each palette layer's centroids
    and assignments, then ŷ in units of the exact arithmetic's grid."""
    image, model = codec.read(data), codec.model
    header = image.header
    parts: list[np.ndarray] = []
    level = None
    factor = model.latent_space.factor
    shape = tuple(side // factor for side in model.padded(header.height, header.width))
    for layer in image.layers:
        _, level = read_level(SymbolReader(layer.coded), level, model.latent_space.channels, shape)
        parts += [level.centroids.ravel(), level.assignment.ravel()]
    if image.latent is not None:
        y_hat = model.latent_codec.decode_y(image.latent, header.quality)
        # ŷ lies on the 2**-ACTIVATION_BITS grid exactly, so scaling and rounding recovers its integers.
        parts.append(torch.round(y_hat * 2**ACTIVATION_BITS).to(torch.int64).numpy().ravel())
    return np.concatenate(parts).astype("<i8") if parts else np.zeros(0, dtype="<i8")


def symbols_sha256(codec: Codec, data: bytes) -> str:
    """SHA-256 of `stream_symbols` (little-endian int64): the same on every machine."""
    return hashlib.sha256(stream_symbols(codec, data).tobytes()).hexdigest()
