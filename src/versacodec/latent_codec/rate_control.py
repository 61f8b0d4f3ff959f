"""Rate control: the highest quality whose real coded file fits a byte budget (bisection).

Coded size grows with quality for all practical purposes; the search only assumes that, and
always returns a setting whose *measured* size is within budget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from versacodec.errors import InputError


class RateChoice(NamedTuple):
    quality: int
    size: int  # bytes of the whole file at that quality
    trials: int


def highest_quality_within(size_at: Callable[[int], int], budget: int, levels: int) -> RateChoice:
    sizes: dict[int, int] = {}

    def measure(quality: int) -> int:
        if quality not in sizes:
            sizes[quality] = size_at(quality)
        return sizes[quality]

    if measure(0) > budget:
        raise InputError(f"the budget of {budget} bytes is below this model's smallest file for this image "
                         f"({sizes[0]} bytes at quality 0)")
    low, high = 0, levels - 1
    if measure(high) <= budget:
        return RateChoice(high, sizes[high], len(sizes))
    while high - low > 1:  # invariant: size(low) ≤ budget < size(high)
        middle = (low + high) // 2
        if measure(middle) <= budget:
            low = middle
        else:
            high = middle
    return RateChoice(low, sizes[low], len(sizes))
