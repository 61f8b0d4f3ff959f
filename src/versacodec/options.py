"""Coding settings checked where they enter (API, CLI, batch, web page), so that every value the
encoder accepts gives a stream that decodes, and a bad value is an InputError naming it."""

from __future__ import annotations

import math
from numbers import Integral, Real

from versacodec.container.format import MAX_VARINT
from versacodec.errors import InputError

MAX_SEED = MAX_VARINT  # the header stores the seed as a varint
# Far above any useful rate (uncompressed 16-bit RGB is 48 bpp); larger targets only overflow budgets.
MAX_BPP = 64.0


def check_integer(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InputError(f"{name} must be an integer, not {value!r}")
    return int(value)


def check_quality(quality: object, levels: int) -> int | None:
    if quality is None:
        return None
    quality = check_integer(quality, "quality")
    if not 0 <= quality < levels:
        raise InputError(f"quality must be an integer from 0 to {levels - 1}, not {quality}")
    return quality


def check_bpp(bpp: object) -> float | None:
    if bpp is None:
        return None
    if isinstance(bpp, bool) or not isinstance(bpp, Real):
        raise InputError(f"target bpp must be a number, not {bpp!r}")
    bpp = float(bpp)
    if not (math.isfinite(bpp) and 0 < bpp <= MAX_BPP):
        raise InputError(f"target bpp must be a positive number up to {MAX_BPP:g}, not {bpp:g}")
    return bpp


def check_seed(seed: object) -> int:
    seed = check_integer(seed, "seed")
    if not 0 <= seed <= MAX_SEED:
        raise InputError(f"seed must be from 0 to {MAX_SEED}, not {seed}")
    return seed


def check_rate(bpp: object, quality: object, levels: int) -> tuple[float | None, int | None]:
    """(bpp, quality) after checking each and that at most one is given."""
    if quality is not None and bpp is not None:
        raise InputError("give either a quality or a target bpp, not both")
    return check_bpp(bpp), check_quality(quality, levels)
