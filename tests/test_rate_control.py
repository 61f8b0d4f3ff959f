import pytest

from versacodec.errors import InputError
from versacodec.latent_codec.rate_control import highest_quality_within


def test_bisection_finds_the_highest_setting_within_budget():
    sizes = [100 + 37 * q + (q * q) // 3 for q in range(101)]
    for budget in (100, 150, 999, 2500, 10_000, 100_000):
        choice = highest_quality_within(lambda q, s=sizes: s[q], budget, 101)
        expected = max(q for q in range(101) if sizes[q] <= budget)
        assert choice.quality == expected and choice.size <= budget
        assert choice.trials <= 9


def test_budget_below_the_smallest_file_is_a_clear_error():
    with pytest.raises(InputError, match="below this model's smallest file"):
        highest_quality_within(lambda q: 500 + q, 100, 101)
