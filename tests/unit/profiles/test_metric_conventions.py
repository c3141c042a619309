"""Conventions of the drift metrics at their edges, with expected values from first principles (no library)."""

from __future__ import annotations

import math

import pytest

from streams.profiles import metrics as m


def _psi(p: list[float], q: list[float]) -> float:
    return sum((qi - pi) * math.log(qi / pi) for pi, qi in zip(p, q, strict=True))


def test_psi_floors_only_empty_bins_a_rare_share_is_used_as_it_is() -> None:
    # 1 of 20,000 (5e-5) is below 1e-4 but not empty: floored, it read 4.604 instead of 4.951
    assert m.psi([5000, 5000], [1, 19999]) == pytest.approx(_psi([0.5, 0.5], [1 / 20000, 19999 / 20000]), rel=1e-12)


def test_psi_floor_of_an_empty_bin_is_1e_4_or_below_every_observed_share() -> None:
    # an empty bin gets 1e-4 (Evidently's floor) ...
    assert m.psi([5000, 5000, 0], [4000, 5000, 1000]) == pytest.approx(
        _psi([0.5, 0.5, 1e-4], [0.4, 0.5, 0.1]), rel=1e-12
    )
    # ... unless a non-empty bin of that distribution is rarer: then its share / 1e6, so an empty bin never
    # weighs more than an observed one (Evidently's current rule)
    smallest = 1 / 20000
    assert m.psi([10000, 9999, 1, 0], [5000, 5000, 5000, 5000]) == pytest.approx(
        _psi([0.5, 9999 / 20000, smallest, smallest / 1e6], [0.25] * 4), rel=1e-12
    )


def test_psi_of_identical_distributions_with_empty_bins_is_zero() -> None:
    assert m.psi([3, 0, 7], [30, 0, 70]) == 0.0


@pytest.mark.parametrize("metric", [m.psi, m.js_distance, m.ks_statistic])
def test_a_distance_to_an_empty_distribution_is_undefined_not_zero(metric) -> None:  # type: ignore[no-untyped-def]
    assert math.isnan(metric([0, 0, 0], [1, 2, 3]))
    assert math.isnan(metric([1, 2, 3], [0, 0, 0]))


def test_a_ks_p_value_without_values_is_undefined() -> None:
    assert math.isnan(m.ks_pvalue(0.3, 0, 100))
    assert math.isnan(m.ks_pvalue(math.nan, 100, 100))
