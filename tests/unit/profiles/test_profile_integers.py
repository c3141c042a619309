"""Integer fields (:mod:`streams.profiles.integers`): mean, ``m2`` and the tail gaps are the correctly rounded
exact values (a rational oracle) for a slice within ``±2²⁰``, profiled among others or alone, whatever the other
slices hold (one of them: values beyond the exact bound, on the float path)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.profiles.profile import profile_frame
from streams.profiles.slices import profile_slices
from streams.profiles.spec import FieldSpec, Kind, ProfileSpec

EDGES = st.lists(
    st.one_of(st.floats(-400, 400), st.integers(-400, 400).map(float), st.integers(-400, 400).map(lambda i: i + 0.5)),
    max_size=6,
).map(lambda xs: tuple(sorted(set(xs))))


def exact(values: list[int], edges: tuple[float, ...]) -> tuple[float, float, float, float]:
    """mean, m2, below_gap, above_gap: the exact rationals, rounded once."""
    n = len(values)
    mean = Fraction(sum(values), n)
    m2 = sum((v - mean) ** 2 for v in values)
    below = sum(Fraction(edges[0]) - v for v in values if v < edges[0]) if edges else Fraction(0)
    above = sum(v - Fraction(edges[-1]) for v in values if v > edges[-1]) if edges else Fraction(0)
    return float(mean), float(m2), float(below), float(above)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(-300, 300)), min_size=1, max_size=60),
    st.lists(st.integers(0, 2), min_size=60, max_size=60),
    EDGES,
    st.sampled_from([pl.Int64, pl.Int32, pl.Int16]),
)
def test_counted_and_sorted_integer_slices_give_the_exact_moments(values, slots, edges, dtype) -> None:
    spec = ProfileSpec("urn:test@1.0.0", "t", (FieldSpec("n", Kind.NUMERIC, edges),), kmv_k=4)
    frame = pl.DataFrame({"n": pl.Series(values, dtype=dtype)})
    ids = np.asarray(slots[: len(values)], dtype=np.int64)
    # slice 3: one value beyond the exact bound (Int64 only): that slice is summed in floats
    if dtype == pl.Int64:
        frame = pl.concat([frame, pl.DataFrame({"n": pl.Series([2**40, 3], dtype=dtype)})])
        ids = np.append(ids, [3, 3])
        far = profile_slices(frame, spec, ids, 4)[3].numeric("n")
        assert far.count == 2 and far.mean == (2**40 + 3) / 2
    got = profile_slices(frame, spec, ids, 4)
    for i in range(3):
        rows = frame[np.flatnonzero(ids == i)]
        alone = profile_frame(rows, spec).numeric("n")
        p = got[i].numeric("n")
        assert p == alone
        xs = [v for v in rows.get_column("n").to_list() if v is not None]
        if not xs:
            assert p.count == 0
            continue
        assert (p.mean, p.m2, p.below_gap, p.above_gap) == exact(xs, edges)
        assert (p.min, p.max, p.count, p.nulls) == (min(xs), max(xs), len(xs), rows.height - len(xs))


def test_infinite_reference_edges_are_profiled_without_exact_tails() -> None:
    edges = (float("-inf"), 0.0, 5.0, float("inf"))
    spec = ProfileSpec("urn:test@1.0.0", "t", (FieldSpec("n", Kind.NUMERIC, edges),), kmv_k=4)
    frame = pl.DataFrame({"n": pl.Series([-3, 0, 2, 5, 9, None], dtype=pl.Int32)})
    p = profile_frame(frame, spec).numeric("n")
    assert (p.count, p.nulls, p.hist, p.below, p.min, p.max, p.mean) == (5, 1, (0, 2, 2, 1, 0), 0, -3.0, 9.0, 2.6)
    assert math.isclose(p.m2, sum((v - 2.6) ** 2 for v in (-3, 0, 2, 5, 9)))


def test_an_edge_below_the_integer_type_counts_no_value_at_or_below_it() -> None:
    """An edge below an integer type's range (an Int8 field against a reference edge at -200.5): the type's minimum
    lies above that edge, in the next bin. Rounding the edge up into the type's range counted it at the edge."""
    for dtype, low, edges in ((pl.Int8, -128, (-200.5, 0.0)), (pl.Int16, -32768, (-40000.5, 0.0))):
        spec = ProfileSpec("urn:test@1.0.0", "t", (FieldSpec("n", Kind.NUMERIC, edges),), kmv_k=4)
        frame = pl.DataFrame({"n": pl.Series([low, low, 5, None, 100], dtype=dtype)})
        p = profile_frame(frame, spec).numeric("n")
        assert (p.hist, p.below, p.count, p.nulls, p.min, p.max) == ((0, 2, 2), 0, 4, 1, float(low), 100.0), dtype
        assert (p.mean, p.m2) == exact([low, low, 5, 100], edges)[:2]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(-20, 20)), min_size=1, max_size=80),
    st.lists(st.integers(-1, 2), min_size=80, max_size=80),
    EDGES,
    st.sampled_from([pl.Int64, pl.Int8, pl.UInt16]),
)
def test_small_ranges_of_every_integer_type_give_every_slice_the_exact_statistics(values, slots, edges, dtype) -> None:
    """Many repeated values of a small range (Int8, UInt16, Int64; the way a counting kernel would take them): every
    statistic of every slice equals the rational oracle and a plain count, rows in no slice (-1) left out."""
    if dtype == pl.UInt16:
        values = [None if v is None else v + 20 for v in values]
    spec = ProfileSpec("urn:test@1.0.0", "t", (FieldSpec("n", Kind.NUMERIC, edges),), kmv_k=4)
    frame = pl.DataFrame({"n": pl.Series(values, dtype=dtype)})
    ids = np.asarray(slots[: len(values)], dtype=np.int64)
    got = profile_slices(frame, spec, ids, 3)
    for i in range(3):
        xs = [v for v, s in zip(values, ids.tolist(), strict=True) if s == i and v is not None]
        p = got[i].numeric("n")
        assert (p.count, p.nulls) == (len(xs), int(np.count_nonzero(ids == i)) - len(xs))
        if not xs:
            continue
        assert (p.mean, p.m2, p.below_gap, p.above_gap) == exact(xs, edges)
        assert (p.min, p.max) == (min(xs), max(xs))
        cum = [sum(1 for v in xs if v <= e) for e in edges]
        want = [b - a for a, b in zip([0, *cum], [*cum, len(xs)], strict=True)] if edges else []
        assert list(p.hist) == want and p.below == (sum(1 for v in xs if v < edges[0]) if edges else 0)
