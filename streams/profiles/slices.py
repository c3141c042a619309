"""Profiles of many slices of one batch in one pass: the per-window slices of stream time.

::

    parts = profile_slices(batch, spec, slice_ids, n)   # == [profile_frame(batch[slice_ids == i], spec) for i < n]

Rows with a negative slice id belong to no slice. Every slice gets the profile :func:`profile_frame` gives for
its rows taken in batch order, field for field and bit for bit: the rows are gathered once, sorted by slice
(stably), and the per-row expressions of :func:`~streams.profiles.fields.field_exprs` run once over the
batch; the reductions follow, vectorised over slices in numpy where they are exact (counts, nulls, histogram
bins against the reference edges, ``below``, category counts and the distinct-count sketch), and on zero-copy
slices of the same polars series where the result depends on the order of the values (mean, ``m2`` and the
tail gaps by their rounding, min and max by the sign of a zero: polars' own kernels on the same values in the
same order). The cost is a few polars
calls per field, not one polars query per slice.

Left per slice: the prediction part (:func:`~streams.profiles.prediction.profile_models`, one group-by per
slice) and fields of column types numpy does not hold exactly (128-bit integers, decimals), which take the
per-slice expressions of :func:`profile_frame` on their slice.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from streams.profiles.fields import (
    CategoricalProfile,
    FieldProfile,
    NumericProfile,
    _cap,
    _int_range,
    field_exprs,
    field_from_row,
    hash_strings,
)
from streams.profiles.prediction import profile_models
from streams.profiles.profile import Profile, profile_frame
from streams.profiles.spec import FieldSpec, Kind, ProfileSpec

__all__ = ["SliceProfiler", "profile_slices"]

_SID = "\x1fsid"
_INTS = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)


@dataclass(frozen=True, slots=True)
class SliceProfiler:
    """Profiles by one spec: ``profiler(frame)`` one batch, ``profiler.slices(frame, ids, n)`` its slices at once."""

    spec: ProfileSpec

    def __call__(self, frame: pl.DataFrame) -> Profile:
        return profile_frame(frame, self.spec)

    def slices(self, frame: pl.DataFrame, slice_ids: np.ndarray, n: int) -> list[Profile]:
        return profile_slices(frame, self.spec, slice_ids, n)


def profile_slices(frame: pl.DataFrame, spec: ProfileSpec, slice_ids: np.ndarray, n: int) -> list[Profile]:
    """The profile of each slice ``0 .. n-1`` of ``frame`` (rows with ``slice_ids == i``, in frame order)."""
    ids = np.asarray(slice_ids, dtype=np.int64)
    if ids.shape != (frame.height,):
        raise ValueError(f"slice_ids has shape {ids.shape}, the frame {frame.height} rows")
    if ids.size and ids.max(initial=-1) >= n:
        raise ValueError(f"slice_ids has ids up to {int(ids.max())}, beyond the {n} slices asked for")
    kept = np.flatnonzero(ids >= 0)
    order = kept[np.argsort(ids[kept], kind="stable")]
    sid = ids[order]
    sizes = np.bincount(sid, minlength=n)
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    missing = [f.name for f in spec.fields if f.name not in frame.columns]
    if missing:  # an absent column is all nulls (as in profile_frame)
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(name) for name in missing)
    names = [f.name for f in spec.fields]
    if spec.prediction is not None:
        pred = spec.prediction
        names += [c for c in (pred.score, pred.label, pred.model_version) if c is not None and c in frame.columns]
    gathered = frame.select(list(dict.fromkeys(names)))[order].with_columns(pl.Series(_SID, sid))
    schema = gathered.schema
    vectorised = [f for f in spec.fields if f.kind is Kind.CATEGORICAL or _numpy_holds(schema[f.name])]
    # one query for the per-row values of every field; then, run together, a (slice, value) group-by per capped
    # categorical field
    cols = gathered.select(_row_exprs(tuple(vectorised), tuple(schema[f.name] for f in vectorised)))
    capped = [f.name for f in vectorised if f"{f.name}\x1fv" in cols.columns]
    lazy = cols.lazy()
    queries = []
    for c in capped:
        v = pl.col(f"{c}\x1fv")
        queries.append(lazy.filter(v.is_not_null()).group_by(_SID, v).len())
    results = pl.collect_all(queries) if queries else []
    groups = dict(zip(capped, results, strict=True))
    fields: list[list[FieldProfile]] = [[] for _ in range(n)]
    for f in spec.fields:
        if f not in vectorised:
            per = _per_slice(gathered, f, spec.kmv_k, schema[f.name], bounds)
        elif f.kind is Kind.NUMERIC:
            per = _numeric(cols, f, schema[f.name], sid, sizes, bounds)
        else:
            per = _categorical(cols, groups.get(f.name), f, spec.kmv_k, sid, sizes)
        for i, fp in enumerate(per):
            fields[i].append(fp)
    out = []
    for i in range(n):
        models = {}
        if spec.prediction is not None and sizes[i]:
            models = profile_models(gathered.slice(int(bounds[i]), int(sizes[i])), spec.prediction)
        named = {f.name: p for f, p in zip(spec.fields, fields[i], strict=True)}
        out.append(Profile(spec.contract, spec.schema, spec.binning_id, int(sizes[i]), named, models))
    return out


def _per_slice(
    gathered: pl.DataFrame, f: FieldSpec, kmv_k: int, dtype: pl.DataType, bounds: np.ndarray
) -> list[FieldProfile]:
    """The per-slice query of :func:`profile_frame`, for column types the vectorised path does not hold."""
    exprs = field_exprs(f, kmv_k, dtype)
    out = []
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        part = gathered.slice(a, b - a)
        out.append(field_from_row(f, part.select(exprs).row(0, named=True), kmv_k, part))
    return out


def _numpy_holds(dtype: pl.DataType) -> bool:
    return not ((dtype.is_integer() and dtype not in _INTS) or dtype.is_decimal())


def _x(f: FieldSpec, dtype: pl.DataType) -> pl.Expr:
    """The numeric values as :func:`field_exprs` reads them: integers as they are, NaN as null."""
    if dtype in _INTS:
        return pl.col(f.name)
    if dtype == pl.Float64:
        return pl.col(f.name).fill_nan(None)
    return pl.col(f.name).cast(pl.Float64, strict=False).fill_nan(None)


@functools.lru_cache(maxsize=64)
def _row_exprs(fields: tuple[FieldSpec, ...], dtypes: tuple[pl.DataType, ...]) -> tuple[pl.Expr, ...]:
    """The per-row columns the reductions read (built once per spec and column types)."""
    out = [pl.col(_SID)]
    for f, dtype in zip(fields, dtypes, strict=True):
        c = f.name
        if f.kind is Kind.NUMERIC:
            x = _x(f, dtype)
            out.append(x.alias(f"{c}\x1fx"))
            if f.edges:  # the terms of the tail gaps (summed per slice by polars, as profile_frame sums them)
                lo, hi = f.edges[0], f.edges[-1]
                out.append((lo - x).clip(lower_bound=0).alias(f"{c}\x1fbg"))
                out.append((x - hi).clip(lower_bound=0).alias(f"{c}\x1fag"))
            if f.edges and dtype in _INTS:  # integers against a float edge: compared as polars compares them
                out.append((x < f.edges[0]).fill_null(False).alias(f"{c}\x1fbelow"))
        elif dtype == pl.Boolean:  # counted as booleans, as field_exprs does: no cast to strings
            out += [pl.col(c).is_not_null().alias(f"{c}\x1fok"), pl.col(c).fill_null(False).alias(f"{c}\x1ft")]
        elif f.cap > 0:  # counted by a (slice, value) group-by
            out.append(pl.col(c).cast(pl.String).alias(f"{c}\x1fv"))
        else:  # identifiers: only the distinct-count sketch
            v = pl.col(c).cast(pl.String)
            out += [v.is_not_null().alias(f"{c}\x1fok"), v.hash(seed=0).alias(f"{c}\x1fh")]
    return tuple(out)


def _numeric(
    cols: pl.DataFrame, f: FieldSpec, dtype: pl.DataType, sid: np.ndarray, sizes: np.ndarray, bounds: np.ndarray
) -> list[FieldProfile]:
    c, n = f.name, len(sizes)
    xs = cols.get_column(f"{c}\x1fx")
    valid: np.ndarray | None = None
    if dtype in _INTS:
        if xs.null_count():
            valid = xs.is_not_null().to_numpy()
            values = xs.fill_null(0).to_numpy()[valid]
        else:
            values = xs.to_numpy()
    else:  # float64, null as NaN (NaN values are nulls already)
        values = xs.to_numpy()
        valid = ~np.isnan(values)
        values = values[valid]
    live = sid if valid is None else sid[valid]
    counts = np.bincount(live, minlength=n)
    hists: list[tuple[int, ...]] = [()] * n
    belows = [0] * n
    if f.edges:
        m = len(f.edges)
        if dtype in _INTS:
            info = _int_range(dtype)
            floors = [min(max(math.floor(e), info[0]), info[1]) for e in f.edges]
            edges = np.asarray(floors, dtype=values.dtype)  # the column's own integer type
            belows = np.bincount(sid[cols.get_column(f"{c}\x1fbelow").to_numpy()], minlength=n).tolist()
        else:
            edges = np.asarray(f.edges, dtype=np.float64)
            belows = np.bincount(live[values < f.edges[0]], minlength=n).tolist()
        hists = [(0,) * (m + 1)] * n
        ends = np.cumsum(counts)
        for i in np.flatnonzero(counts).tolist():  # cumulative counts at the edges from the sorted values
            run = np.sort(values[ends[i] - counts[i] : ends[i]])
            cum = np.searchsorted(run, edges, side="right").tolist()
            hists[i] = tuple(b - a for a, b in zip([0, *cum], [*cum, len(run)], strict=True))
    # what depends on the order of the values, by polars' kernels on zero-copy slices of the same series (as
    # profile_frame computes it: the same rounding of sums, the same sign of a zero for min and max)
    out: list[FieldProfile] = []
    for i, (count, size) in enumerate(zip(counts.tolist(), sizes.tolist(), strict=True)):
        if count == 0:
            out.append(NumericProfile(0, size, None, None, 0.0, 0.0, hists[i], belows[i], 0.0, 0.0))
            continue
        part = xs.slice(int(bounds[i]), size)
        mean, var, low, high = part.mean(), part.var(ddof=0), part.min(), part.max()
        assert mean is not None and var is not None and low is not None and high is not None
        gaps = [0.0, 0.0]  # a sum of zeros unless a value lies beyond the edge
        if f.edges and float(low) < f.edges[0]:  # type: ignore[arg-type]
            gaps[0] = float(cols.get_column(f"{c}\x1fbg").slice(int(bounds[i]), size).sum() or 0.0)
        if f.edges and float(high) > f.edges[-1]:  # type: ignore[arg-type]
            gaps[1] = float(cols.get_column(f"{c}\x1fag").slice(int(bounds[i]), size).sum() or 0.0)
        out.append(
            NumericProfile(
                count, size - count, float(low), float(high), float(mean), float(var) * count,  # type: ignore[arg-type]
                hists[i], belows[i], *gaps,
            )
        )  # fmt: skip
    return out


def _categorical(
    cols: pl.DataFrame, groups: pl.DataFrame | None, f: FieldSpec, kmv_k: int, sid: np.ndarray, sizes: np.ndarray
) -> list[FieldProfile]:
    """Top ``cap`` values per slice from the (slice, value) counts; the k smallest distinct hashes per slice."""
    c, n = f.name, len(sizes)
    if groups is not None:  # non-null values per slice: the sum of its groups
        weights = groups.get_column("len").to_numpy().astype(np.float64)
        counts = np.bincount(groups.get_column(_SID).to_numpy(), weights, minlength=n).astype(np.int64)
    else:
        valid = cols.get_column(f"{c}\x1fok").to_numpy()
        counts = np.bincount(sid[valid], minlength=n)
    found: list[dict[str, int]] = [{} for _ in range(n)]
    sketches: list[tuple[int, ...]] = [()] * n
    if f"{c}\x1ft" in cols.columns:  # a boolean column
        trues = np.bincount(sid[cols.get_column(f"{c}\x1ft").to_numpy()], minlength=n).tolist()
        for i, (true, count) in enumerate(zip(trues, counts.tolist(), strict=True)):
            found[i] = {k: m for k, m in (("true", true), ("false", count - true)) if m}
    elif groups is not None:
        for s, v, m in groups.iter_rows():
            found[s][v] = int(m)
    else:  # identifiers: no counts, only the sketch (the 4k smallest hashes first: no full sort)
        hashes = cols.get_column(f"{c}\x1fh").to_numpy()
        ends = np.cumsum(sizes)
        for i in np.flatnonzero(counts).tolist():
            a, b = int(ends[i] - sizes[i]), int(ends[i])
            sketches[i] = _smallest_distinct(hashes[a:b][valid[a:b]], kmv_k)
    out: list[FieldProfile] = []
    for i in range(n):
        got: tuple[tuple[str, int], ...] = ()
        if found[i]:  # every distinct value of the slice is here: its sketch is exact from them
            got = _cap(found[i], f.cap)[0] if f.cap > 0 else ()
            sketches[i] = tuple(sorted(hash_strings(sorted(found[i]))))[:kmv_k]
        count = int(counts[i])
        other = count - sum(k for _, k in got)
        out.append(CategoricalProfile(count, int(sizes[i]) - count, got, other, sketches[i], f.cap, kmv_k))
    return out


def _smallest_distinct(hashes: np.ndarray, k: int) -> tuple[int, ...]:
    """The ``k`` smallest distinct values, ascending."""
    if len(hashes) > 4 * k:
        bound = np.partition(hashes, 4 * k - 1)[4 * k - 1]
        candidates = _distinct(hashes[hashes <= bound])
        if len(candidates) >= k:
            return tuple(candidates[:k].tolist())
    return tuple(_distinct(hashes)[:k].tolist())


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a sort and a comparison: cheaper than np.unique's hashing on small arrays)."""
    ordered = np.sort(values)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))] if len(ordered) else ordered
