"""Rate control: the highest quality whose real coded file fits a byte budget.

Coded size grows with quality for all practical purposes; the searches only assume that, and
always return a setting whose *measured* size is within budget.

Without an estimate (`size_at` alone: the baselines, where each trial is an encode) the search
bisects on real sizes. With `estimate_at`, a prediction of the size at a quality that costs a
fraction of a real coding (versacodec's entropy-model estimate), it searches on estimates and
codes for real only to confirm: the highest quality whose estimate fits is coded, and kept when
its file fits. When the estimate misled (the file is over the budget), the search runs again on
estimates corrected by the error just measured, one quality lower at least, until a file fits.
A quality above the one kept is coded too only when its estimate lies within `slack` bytes of
the budget, since estimates can lie that far above the real size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

from versacodec.errors import BudgetTooSmall

# Log-size per quality step a search assumes before it has two points to measure it from (the
# shipped model's streams grow by 3–6 % a step).
_LOG_SLOPE = 0.04


class RateChoice(NamedTuple):
    quality: int
    size: int  # bytes of the whole file at that quality
    trials: int  # real codings
    estimates: int = 0  # estimates


class _Measured:
    """A function of the quality, each value computed once."""

    def __init__(self, function: Callable[[int], float]) -> None:
        self.function = function
        self.values: dict[int, float] = {}

    def __call__(self, quality: int) -> float:
        if quality not in self.values:
            self.values[quality] = self.function(quality)
        return self.values[quality]


def highest_quality_within(size_at: Callable[[int], int], budget: int, levels: int,
                           estimate_at: Callable[[int], float] | None = None, slack: float = 0.0) -> RateChoice:
    sizes = _Measured(size_at)
    if estimate_at is None:
        quality = _bisect(sizes, budget, levels)
        return RateChoice(quality, int(sizes(quality)), len(sizes.values))
    estimates = _Measured(estimate_at)
    quality, error = levels - 1, 0.0
    while True:
        corrected = partial(_offset, estimates, error)
        quality = min(quality, max(0, _highest_within(corrected, budget, levels)))
        if sizes(quality) <= budget:
            break
        _check_floor(sizes, budget, quality)
        error = sizes(quality) - estimates(quality)  # the estimate lay this far below the file
        quality -= 1
    while quality + 1 < levels and estimates(quality + 1) - slack <= budget and sizes(quality + 1) <= budget:
        quality += 1
    return RateChoice(quality, int(sizes(quality)), len(sizes.values), len(estimates.values))


def _offset(estimates: _Measured, error: float, quality: int) -> float:
    return estimates(quality) + error


def _check_floor(sizes: _Measured, budget: int, quality: int) -> None:
    if quality == 0:
        raise BudgetTooSmall(f"the budget of {budget} bytes is below this model's smallest file for this image "
                         f"({int(sizes(0))} bytes at quality 0)")


def _bisect(sizes: _Measured, budget: int, levels: int) -> int:
    if sizes(0) > budget:
        _check_floor(sizes, budget, 0)
    low, high = 0, levels - 1
    if sizes(high) <= budget:
        return high
    while high - low > 1:  # invariant: size(low) ≤ budget < size(high)
        middle = (low + high) // 2
        if sizes(middle) <= budget:
            low = middle
        else:
            high = middle
    return low


def _highest_within(value_at: Callable[[int], float], budget: float, levels: int) -> int:
    """The highest quality whose value is within budget (−1: none), by interpolating the log of the
    values between the closest qualities known on either side of the budget."""
    low, high = -1, levels  # value(low) ≤ budget < value(high); −1 and `levels` stand for "none known yet"
    values: dict[int, float] = {}
    quality = levels // 2
    while high - low > 1:
        values[quality] = value_at(quality)
        if values[quality] <= budget:
            low = quality
        else:
            high = quality
        if high - low > 1:
            quality = _next_guess(values, low, high, budget, levels)
    return low


def _next_guess(values: dict[int, float], low: int, high: int, budget: float, levels: int) -> int:
    if low >= 0 and high < levels:
        slope = (math.log(values[high]) - math.log(values[low])) / (high - low)
        anchor = low
    else:
        anchor = low if low >= 0 else high
        known = sorted(values)
        slope = _LOG_SLOPE
        if len(known) >= 2 and values[known[-1]] > values[known[0]]:
            slope = (math.log(values[known[-1]]) - math.log(values[known[0]])) / (known[-1] - known[0])
    guess = anchor + math.log(max(budget, 1) / values[anchor]) / slope if slope > 0 else (low + high) / 2
    return min(max(round(guess), low + 1), high - 1)
