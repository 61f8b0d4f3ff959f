"""Bjøntegaard deltas between two rate–metric curves.

BD-rate: the average relative rate difference at equal quality, e.g. −0.25 = the test codec
needs 25% fewer bits than the anchor. BD-metric: the average metric difference at equal rate
(test − anchor, in the metric's own units). Both interpolate with piecewise cubic Hermite
(PCHIP, as in the later VCEG/JVET practice: no overshoot between points, unlike the original
cubic fit) in the log-rate domain and integrate over the range where the curves overlap only.
For metrics where lower is better (LPIPS, DISTS, FID) the quality axis is negated internally;
the reported BD-metric keeps the metric's own sign.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BjontegaardDelta:
    bd_rate: float | None  # fraction; None when the quality ranges do not overlap
    bd_metric: float | None  # metric units; None when the rate ranges do not overlap
    monotonic: bool  # False when a curve's quality does not rise with rate (deltas then less meaningful)

    def as_dict(self) -> dict:
        return {"bd_rate": self.bd_rate, "bd_metric": self.bd_metric, "monotonic": self.monotonic}


def _curve(rates: Sequence[float], values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    rates_array, values_array = np.asarray(rates, dtype=np.float64), np.asarray(values, dtype=np.float64)
    finite = np.isfinite(rates_array) & np.isfinite(values_array) & (rates_array > 0)
    order = np.argsort(rates_array[finite])
    return np.log(rates_array[finite][order]), values_array[finite][order]


def _average_gap(x_anchor: np.ndarray, y_anchor: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float | None:
    """Mean of (y_test − y_anchor) over the overlap of the x ranges, each curve PCHIP-interpolated."""
    from scipy.interpolate import PchipInterpolator

    curves = []
    for x, y in ((x_anchor, y_anchor), (x_test, y_test)):
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        distinct = np.concatenate([[True], np.diff(x) > 0])  # PCHIP needs strictly increasing x
        if distinct.sum() < 2:
            return None
        curves.append((x[distinct], y[distinct]))
    low = max(curves[0][0][0], curves[1][0][0])
    high = min(curves[0][0][-1], curves[1][0][-1])
    if high <= low:
        return None
    integrals = [PchipInterpolator(x, y).integrate(low, high) for x, y in curves]
    return float((integrals[1] - integrals[0]) / (high - low))


def bjontegaard(anchor_rates: Sequence[float], anchor_values: Sequence[float], test_rates: Sequence[float],
                test_values: Sequence[float], *, higher_is_better: bool = True) -> BjontegaardDelta:
    log_ra, qa = _curve(anchor_rates, anchor_values)
    log_rt, qt = _curve(test_rates, test_values)
    sign = 1.0 if higher_is_better else -1.0
    monotonic = bool(np.all(np.diff(sign * qa) > 0) and np.all(np.diff(sign * qt) > 0))
    rate_gap = _average_gap(sign * qa, log_ra, sign * qt, log_rt)
    metric_gap = _average_gap(log_ra, qa, log_rt, qt)
    return BjontegaardDelta(None if rate_gap is None else float(np.expm1(rate_gap)), metric_gap, monotonic)
