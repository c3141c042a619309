"""Profiling every slice of a batch in one pass gives, slice for slice, the profile of the slice's rows taken
alone (:func:`profile_frame`), bit for bit: floats compared by their hex form, so even rounding must agree.
A slice's field profiles depend only on the multiset of its values: not on the order of the rows, nor on whether
its rows are one block of the batch or interleaved with other slices'."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.profiles.profile import Profile, profile_frame
from streams.profiles.slices import SliceProfiler, profile_slices
from streams.profiles.spec import FieldSpec, Kind, PredictionSpec, ProfileSpec

WORDS = ["FR", "DE", "ES", "IT", "never-in-reference", "ü", ""]


def bits(value: Any) -> Any:
    """A profile's dict with every float as its exact hex form (-0.0, NaN and rounding all visible)."""
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, dict):
        return {k: bits(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [bits(v) for v in value]
    return value


def same(got: Profile, want: Profile) -> None:
    assert bits(got.as_dict()) == bits(want.as_dict())


def spec_of(float_edges: tuple[float, ...], int_edges: tuple[float, ...], cap: int, k: int) -> ProfileSpec:
    fields = (
        FieldSpec("x", Kind.NUMERIC, edges=float_edges),
        FieldSpec("n", Kind.NUMERIC, edges=int_edges),
        FieldSpec("small", Kind.NUMERIC, edges=int_edges),  # an Int8 column: edges floored and clipped to its range
        FieldSpec("f32", Kind.NUMERIC, edges=float_edges),  # cast to Float64
        FieldSpec("plain", Kind.NUMERIC),  # no reference bins
        FieldSpec("absent", Kind.NUMERIC, edges=float_edges),  # not in the frame: all nulls
        FieldSpec("country", Kind.CATEGORICAL, cap=cap),
        FieldSpec("flag", Kind.CATEGORICAL, cap=cap),
        FieldSpec("ident", Kind.CATEGORICAL, cap=0),  # identifiers: only the distinct-count sketch
    )
    prediction = PredictionSpec(score="score", label="label", model_version="version")
    return ProfileSpec("urn:test@1.0.0", "rows", fields, kmv_k=k, prediction=prediction)


floats = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(-100, 100),
    st.sampled_from([0.0, 1.5, -2.0, 10.0]),
)
ints = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.integers(-300, 300))


@st.composite
def batches(draw: st.DrawFn) -> tuple[pl.DataFrame, np.ndarray, int, ProfileSpec]:
    rows = draw(st.integers(0, 60))
    n = draw(st.integers(1, 6))
    row = st.tuples(
        floats, ints, st.one_of(st.none(), st.integers(-128, 127)), floats,
        st.one_of(st.none(), st.sampled_from(WORDS)), st.one_of(st.none(), st.booleans()),
        st.one_of(st.none(), st.integers(0, 40).map(lambda i: f"id-{i}")),
        st.one_of(st.none(), st.floats(-0.5, 1.5)), st.sampled_from([None, "yes", "no"]),
        st.sampled_from([None, "m1", "m2"]), st.integers(-1, n - 1),
    )  # fmt: skip
    data = draw(st.lists(row, min_size=rows, max_size=rows))
    cols = list(zip(*data, strict=True)) if data else [[] for _ in range(11)]
    frame = pl.DataFrame(
        {
            "x": pl.Series(cols[0], dtype=pl.Float64),
            "n": pl.Series(cols[1], dtype=pl.Int64),
            "small": pl.Series(cols[2], dtype=pl.Int8),
            "f32": pl.Series(cols[3], dtype=pl.Float64).cast(pl.Float32),
            "plain": pl.Series(cols[1], dtype=pl.Int64),
            "country": pl.Series(cols[4], dtype=pl.String),
            "flag": pl.Series(cols[5], dtype=pl.Boolean),
            "ident": pl.Series(cols[6], dtype=pl.String),
            "score": pl.Series(cols[7], dtype=pl.Float64),
            "label": pl.Series(cols[8], dtype=pl.String),
            "version": pl.Series(cols[9], dtype=pl.String),
        }
    )
    ids = np.asarray(cols[10], dtype=np.int64)
    edge = st.floats(-1e3, 1e3, allow_nan=False)
    float_edges = tuple(sorted(set(draw(st.lists(edge, max_size=8)))))
    int_edges = tuple(sorted(set(draw(st.lists(st.floats(-500, 500), max_size=6)))))
    spec = spec_of(float_edges, int_edges, cap=draw(st.integers(1, 4)), k=draw(st.integers(1, 5)))
    return frame, ids, n, spec


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_every_slice_profiled_in_one_pass_equals_its_own_profile(batch: tuple) -> None:
    frame, ids, n, spec = batch
    got = profile_slices(frame, spec, ids, n)
    assert len(got) == n
    for i in range(n):
        same(got[i], profile_frame(frame[np.flatnonzero(ids == i)], spec))
    grouped = np.argsort(ids, kind="stable")  # every slice one block of rows (read in place, not gathered)
    for a, b in zip(profile_slices(frame[grouped], spec, ids[grouped], n), got, strict=True):
        same(a, b)
    backwards = grouped[::-1]  # the field profiles do not depend on the order of the rows (the models' sums do)
    for a, b in zip(profile_slices(frame[backwards], spec, ids[backwards], n), got, strict=True):
        assert bits(a.as_dict()["fields"]) == bits(b.as_dict()["fields"])


def test_one_row_empty_and_overflowing_slices_and_a_large_identifier_field() -> None:
    rng = np.random.default_rng(7)
    rows = 5_000
    frame = pl.DataFrame(
        {
            "x": rng.normal(0, 1, rows),
            "n": rng.integers(-50, 50, rows),
            "small": rng.integers(-5, 5, rows).astype(np.int8),
            "f32": rng.normal(0, 1, rows).astype(np.float32),
            "plain": rng.integers(0, 9, rows),
            "country": rng.choice(WORDS, rows),  # 7 values over a cap of 3: top 3 + other
            "flag": rng.random(rows) < 0.3,
            "ident": [f"id-{v}" for v in rng.integers(0, 3_000, rows)],  # > 4k values: the partition shortcut
            "score": rng.random(rows),
            "label": rng.choice(["yes", "no"], rows),
            "version": rng.choice(["m1", "m2"], rows),
        }
    ).with_columns(pl.when(pl.int_range(pl.len()) % 11 == 0).then(None).otherwise(pl.col("x")).alias("x"))
    ids = rng.integers(0, 3, rows)
    ids[17], ids[rows - 1] = 3, 5  # two one-row slices; slice 4 is empty; slice 6 too, and last
    spec = spec_of((-1.0, 0.0, 0.5, 2.0), (-10.0, 0.5, 30.0), cap=3, k=64)
    got = SliceProfiler(spec).slices(frame, ids, 7)
    sizes = [p.rows for p in got]
    assert sizes[3] == sizes[5] == 1 and sizes[4] == sizes[6] == 0 and sum(sizes) == rows
    assert got[0].categorical("country").other > 0 and len(got[0].categorical("ident").kmv) == 64
    for i, p in enumerate(got):
        same(p, profile_frame(frame[np.flatnonzero(ids == i)], spec))


def test_slice_ids_must_fit_the_frame_and_the_number_of_slices() -> None:
    spec = spec_of((), (), cap=2, k=4)
    frame = pl.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(ValueError, match="shape"):
        profile_slices(frame, spec, np.array([0]), 1)
    with pytest.raises(ValueError, match="beyond"):
        profile_slices(frame, spec, np.array([0, 2]), 2)
