"""Red team 7: integer fields at the ends of their type, against the reference edges compared exactly (Fractions).

A histogram bin is ``(e(i-1), e(i)]`` and ``below`` counts ``v < e0`` (streams/profiles/spec.py): for 64-bit
integers beyond 2⁵³ neither may go through float64, and an edge below the type's range counts no value."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import polars as pl
import pytest
from scipy import stats

from streams.profiles.drift import compare
from streams.profiles.profile import profile_frame
from streams.profiles.spec import FieldSpec, Kind, ProfileSpec


def exact_hist(values: list[int], edges: tuple[float, ...]) -> tuple[list[int], int]:
    cuts = [Fraction(e) if np.isfinite(e) else e for e in edges]  # an int compares exactly with a Fraction or ±inf
    hist = [sum(1 for v in values if v <= cuts[0])]
    hist += [sum(1 for v in values if a < v <= b) for a, b in itertools.pairwise(cuts)]
    hist.append(sum(1 for v in values if v > cuts[-1]))
    return hist, sum(1 for v in values if v < cuts[0])


def profiled(values: list[int], dtype: pl.DataType, edges: tuple[float, ...]) -> tuple[list[int], int]:
    spec = ProfileSpec("urn:t@1", "t", (FieldSpec("x", Kind.NUMERIC, edges),))
    p = profile_frame(pl.DataFrame({"x": values}, schema={"x": dtype}), spec).numeric("x")
    return list(p.hist), p.below


def test_uint64_values_below_a_reference_minimum_beyond_2_53_are_counted_below():
    # numpy's searchsorted of a uint64 array for a Python int compares in float64, where 2⁶² - 5 == 2⁶²
    rng = np.random.default_rng(7)
    values = [2**62 + int(d) for d in rng.integers(-100, 101, 200)]
    edges = (float(2**62), float(2**62 + 64))
    want = exact_hist(values, edges)
    assert want[1] > 50
    assert profiled(values, pl.UInt64(), edges) == want


def test_uint64_window_below_the_reference_range_is_drift_on_the_share_outside():
    low, ref_values = 2**62, [2**62 + i for i in range(0, 2000, 2)]
    spec = ProfileSpec("urn:t@1", "t", (FieldSpec("x", Kind.NUMERIC, (float(low), float(low + 1024), 2.0**62 + 2048)),))
    ref = profile_frame(pl.DataFrame({"x": ref_values}, schema={"x": pl.UInt64}), spec)
    cur = profile_frame(pl.DataFrame({"x": [low - 1 - i for i in range(100)]}, schema={"x": pl.UInt64}), spec)
    report = compare(ref, cur, edges={"x": spec.fields[0].edges})
    outside = report.field("x").metric("share_outside_range")
    assert outside.value == 1.0
    assert outside.drifted


@pytest.mark.parametrize("edge", [-(2.0**63) - 2048, -(2.0**63) - 1e6, -np.inf])
def test_int64_edge_below_the_type_range_counts_no_value(edge):
    # float(-2⁶³) - 1.0 is -2⁶³ itself: such an edge was taken for the type's minimum and counted it
    values = [-(2**63)] * 5 + [-(2**63) + 7, 0, 12]
    edges = (edge, -(2.0**63), 1.0)
    want = exact_hist(values, edges)
    assert want[0] == [0, 5, 2, 1]
    assert profiled(values, pl.Int64(), edges) == want


def test_ks_of_integers_with_an_edge_per_value_is_exact_when_the_window_reaches_below_the_reference():
    # docs/drift.md: the binned KS statistic is exact for integer fields with an edge per value; a window's values
    # under the reference minimum shared the first bin (-inf, e0] with the minimum, hiding the gap just below e0
    rng = np.random.default_rng(11)
    ref_values, cur_values = rng.integers(0, 5, 2000), rng.integers(-3, 5, 300)
    edges = (0.0, 1.0, 2.0, 3.0, 4.0)
    spec = ProfileSpec("urn:t@1", "t", (FieldSpec("x", Kind.NUMERIC, edges),))
    ref = profile_frame(pl.DataFrame({"x": ref_values}), spec)
    cur = profile_frame(pl.DataFrame({"x": cur_values}), spec)
    ks = compare(ref, cur, edges={"x": edges}).field("x").metric("ks").value
    assert ks == pytest.approx(stats.ks_2samp(ref_values, cur_values).statistic, abs=1e-12)


def test_a_value_at_its_threshold_compares_as_computed_in_floats():
    # docs/drift.md, "a value at its threshold": `>=` for the null-rate change on the float difference (as numpy)
    spec = ProfileSpec("urn:t@1", "t", (FieldSpec("c", Kind.CATEGORICAL),))
    ref = profile_frame(pl.DataFrame({"c": ["a"] * 800_000 + [None] * 200_000}), spec)

    def null_rate(nulls: int) -> tuple[float, bool]:
        cur = profile_frame(pl.DataFrame({"c": ["a"] * (10_000 - nulls) + [None] * nulls}), spec)
        r = compare(ref, cur, edges={}).field("c").metric("null_rate_change")
        return r.value, r.drifted

    assert null_rate(2_500) == (np.float64(0.25) - np.float64(0.2), False)  # 0.04999999999999999
    assert null_rate(2_501)[1]
    assert null_rate(1_500) == (np.float64(0.15) - np.float64(0.2), True)  # -0.05000000000000002


def test_shares_at_their_threshold_outside_range_not_flagged_vanished_flagged():
    # docs/drift.md: share outside the range > 0.01, vanished reference share >= 0.05
    spec = ProfileSpec(
        "urn:t@1", "t", (FieldSpec("x", Kind.NUMERIC, (0.0, 50.0, 99.0)), FieldSpec("c", Kind.CATEGORICAL))
    )
    ref = profile_frame(pl.DataFrame({"x": [float(i % 100) for i in range(1000)], "c": ["a"] * 950 + ["b"] * 50}), spec)
    cur = profile_frame(pl.DataFrame({"x": [float(i) for i in range(99)] + [500.0], "c": ["a"] * 100}), spec)
    report = compare(ref, cur, edges={"x": spec.fields[0].edges})
    outside = report.field("x").metric("share_outside_range")
    vanished = report.field("c").metric("vanished_category_share")
    assert (outside.value, outside.drifted) == (0.01, False)  # 1 of 100
    assert (vanished.value, vanished.drifted) == (0.05, True)  # "b", expected 5 times


@pytest.mark.parametrize("dtype", [pl.Int64, pl.UInt64])
def test_integer_min_and_max_beyond_2_53_hold_every_value_so_a_reference_holds_its_own_values(dtype):
    # a reference's edges are its min and max: rounded to the nearest float, 2⁵³ + 3 became 2⁵³ + 4, and the
    # reference's own minimum counted as "below the reference minimum" (outside its range)
    rng = np.random.default_rng(5)
    values = [2**53 + 3, 2**53 + 5, *(2**60 + int(d) for d in rng.integers(-(10**6), 10**6, 50)), 2**61 + 1]
    spec = ProfileSpec("urn:t@1", "t", (FieldSpec("x", Kind.NUMERIC),))
    p = profile_frame(pl.DataFrame({"x": values}, schema={"x": dtype}), spec).numeric("x")
    assert p.min is not None and p.max is not None
    assert Fraction(p.min) <= min(values) and Fraction(p.max) >= max(values)
    edges = (p.min, p.max)
    assert exact_hist(values, edges) == ([0, len(values), 0], 0)
    assert profiled(values, dtype(), edges) == ([0, len(values), 0], 0)
