""":func:`profile_frame` (numpy kernels, :mod:`streams.profiles.kernels`) against a plain-Python computation of the
same statistics: counts, nulls, min, max, histogram bins, ``below``, category counts under the cap and the
distinct-count sketch exactly; mean, ``m2`` and the tail gaps to rounding."""

from __future__ import annotations

import math
from collections import Counter

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.profiles.fields import _cap, hash_strings
from streams.profiles.profile import profile_frame
from streams.profiles.spec import FieldSpec, Kind, ProfileSpec

WORDS = ["FR", "DE", "ES", "IT", "never-in-reference", "ü", ""]


def numeric_oracle(values: list[float | int | None], edges: tuple[float, ...], integer: bool) -> dict[str, object]:
    xs = sorted(v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v)))
    hist: list[int] = []
    if edges:
        # right-closed bins; an integer v against an edge e: v <= e, compared exactly
        cum = [sum(1 for v in xs if v <= e) for e in edges]
        hist = [b - a for a, b in zip([0, *cum], [*cum, len(xs)], strict=True)]
    below = sum(1 for v in xs if v < edges[0]) if edges else 0
    return {
        "count": len(xs), "nulls": len(values) - len(xs), "min": float(xs[0]) if xs else None,
        "max": float(xs[-1]) if xs else None, "hist": hist, "below": below,
        "mean": math.fsum(xs) / len(xs) if xs else 0.0,
        "below_gap": math.fsum(edges[0] - v for v in xs if v < edges[0]) if edges else 0.0,
        "above_gap": math.fsum(v - edges[-1] for v in xs if v > edges[-1]) if edges else 0.0,
    }  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.just(float("nan")), st.floats(-1e6, 1e6)), max_size=80),
    st.lists(st.one_of(st.none(), st.integers(-(2**40), 2**40), st.integers(-20, 20)), max_size=80),
    st.lists(st.one_of(st.none(), st.sampled_from(WORDS)), max_size=80),
    st.lists(  # edges near the integers: v < e0 and v <= e for an integer v on both sides of an edge
        st.one_of(st.floats(-100, 100), st.integers(-25, 25).map(float), st.integers(-25, 25).map(lambda i: i + 0.5)),
        max_size=7,
    ),
    st.integers(1, 8),
    st.integers(1, 9),
)
def test_profile_frame_equals_a_plain_python_profile(floats, ints, words, edge_list, cap, k):
    rows = max(len(floats), len(ints), len(words))
    pad = lambda xs: xs + [None] * (rows - len(xs))  # noqa: E731
    frame = pl.DataFrame(
        {"x": pl.Series(pad(floats), dtype=pl.Float64), "n": pl.Series(pad(ints), dtype=pl.Int64),
         "w": pl.Series(pad(words), dtype=pl.String)}
    )  # fmt: skip
    edges = tuple(sorted(set(edge_list)))
    spec = ProfileSpec(
        "urn:test@1.0.0", "t",
        (FieldSpec("x", Kind.NUMERIC, edges), FieldSpec("n", Kind.NUMERIC, edges),
         FieldSpec("w", Kind.CATEGORICAL, cap=cap), FieldSpec("id", Kind.CATEGORICAL, cap=0)),
        kmv_k=k,
    )  # fmt: skip
    got = profile_frame(frame.with_columns(pl.col("w").alias("id")), spec)
    for name, integer in (("x", False), ("n", True)):
        want = numeric_oracle(frame.get_column(name).to_list(), edges, integer)
        p = got.numeric(name)
        assert (p.count, p.nulls, p.min, p.max, list(p.hist), p.below) == tuple(
            want[key] for key in ("count", "nulls", "min", "max", "hist", "below")
        ), name
        assert math.isclose(p.mean, want["mean"], rel_tol=1e-12, abs_tol=1e-9), name  # type: ignore[arg-type]
        xs = [v for v in frame.get_column(name).to_list() if v is not None and not math.isnan(v)]
        m2 = math.fsum((v - want["mean"]) ** 2 for v in xs)  # type: ignore[operator]
        assert math.isclose(p.m2, m2, rel_tol=1e-9, abs_tol=1e-6), name
        for gap in ("below_gap", "above_gap"):
            assert math.isclose(getattr(p, gap), want[gap], rel_tol=1e-12, abs_tol=1e-9), (name, gap)  # type: ignore[arg-type]
    values = [v for v in frame.get_column("w").to_list() if v is not None]
    counts = Counter(values)
    sketch = tuple(sorted(hash_strings(sorted(counts))))[:k]
    w, ident = got.categorical("w"), got.categorical("id")
    assert (w.count, w.nulls, w.counts, w.kmv) == (len(values), rows - len(values), _cap(counts, cap)[0], sketch)
    assert w.other == len(values) - sum(m for _, m in w.counts)
    assert (ident.count, ident.counts, ident.other, ident.kmv) == (len(values), (), len(values), sketch)


def test_a_value_seen_in_an_earlier_batch_is_named_again_and_new_values_are_read_from_the_frame() -> None:
    spec = ProfileSpec("urn:test@1.0.0", "t", (FieldSpec("w", Kind.CATEGORICAL, cap=4),), kmv_k=8)
    first = profile_frame(pl.DataFrame({"w": ["FR", "DE", "FR"]}), spec).categorical("w")
    second = profile_frame(pl.DataFrame({"w": ["FR", "never-seen-before", None]}), spec).categorical("w")
    assert first.frequencies() == {"DE": 1, "FR": 2}
    assert second.frequencies() == {"FR": 1, "never-seen-before": 1} and second.nulls == 1
