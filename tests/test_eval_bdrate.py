import math

import pytest

from versacodec.evaluation.bdrate import bjontegaard

RATES = [0.1, 0.2, 0.4, 0.8]
PSNR = [28.0, 30.5, 32.2, 33.4]


@pytest.mark.parametrize("factor", [0.8, 1.0, 1.37])
def test_bd_rate_of_a_curve_shifted_in_rate_is_the_factor_minus_one(factor):
    delta = bjontegaard(RATES, PSNR, [r * factor for r in RATES], PSNR)
    assert delta.bd_rate == pytest.approx(factor - 1, abs=1e-12)
    assert delta.monotonic


def test_bd_metric_of_a_curve_shifted_in_quality_is_the_shift():
    delta = bjontegaard(RATES, PSNR, RATES, [p + 0.75 for p in PSNR])
    assert delta.bd_metric == pytest.approx(0.75, abs=1e-12)
    assert delta.bd_rate < 0  # better quality at equal rate = fewer bits at equal quality


def test_lower_is_better_metrics_keep_the_sign_conventions():
    lpips = [0.6, 0.45, 0.33, 0.25]
    cheaper = bjontegaard(RATES, lpips, [r * 0.5 for r in RATES], lpips, higher_is_better=False)
    assert cheaper.bd_rate == pytest.approx(-0.5, abs=1e-12)
    worse = bjontegaard(RATES, lpips, RATES, [v + 0.02 for v in lpips], higher_is_better=False)
    assert worse.bd_metric == pytest.approx(0.02, abs=1e-12) and worse.bd_rate > 0


def test_partial_overlap_integrates_only_the_common_range():
    # PSNR linear in log-rate (PCHIP reproduces lines exactly); the test curve covers only the upper
    # part of the anchor's quality range, at twice the rate, so only that part is integrated.
    linear = [20 + 4 * math.log(r) for r in RATES]
    test_rates = [r * 2 for r in RATES[1:]]
    delta = bjontegaard(RATES, linear, test_rates, linear[1:])
    assert delta.bd_rate == pytest.approx(1.0, abs=1e-12)


def test_no_overlap_and_non_monotonic_curves_are_reported():
    assert bjontegaard(RATES, PSNR, RATES, [40, 41, 42, 43]).bd_rate is None
    assert bjontegaard(RATES[:2], PSNR[:2], [5.0, 6.0], [1.0, 2.0]).bd_metric is None
    bumpy = bjontegaard(RATES, PSNR, RATES, [28.0, 27.5, 32.0, 33.0])
    assert not bumpy.monotonic and math.isfinite(bumpy.bd_metric)
