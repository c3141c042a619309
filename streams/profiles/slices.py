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

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from streams.profiles.fields import (
    CategoricalProfile,
    FieldProfile,
    NumericProfile,
    _int_range,
    field_exprs,
    field_from_row,
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
    gathered = frame.select(list(dict.fromkeys(names)))[order]
    fields: list[list[FieldProfile]] = [[] for _ in range(n)]
    for f in spec.fields:
        dtype = gathered.schema[f.name]
        if f.kind is Kind.NUMERIC and ((dtype.is_integer() and dtype not in _INTS) or dtype.is_decimal()):
            per = _per_slice(gathered, f, spec.kmv_k, dtype, bounds)
        elif f.kind is Kind.NUMERIC:
            per = _numeric(gathered, f, dtype, sid, sizes, bounds)
        else:
            per = _categorical(gathered, f, spec.kmv_k, sid, sizes)
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


def _numeric(
    gathered: pl.DataFrame,
    f: FieldSpec,
    dtype: pl.DataType,
    sid: np.ndarray,
    sizes: np.ndarray,
    bounds: np.ndarray,
) -> list[FieldProfile]:
    c, n = f.name, len(sizes)
    integer = dtype in _INTS
    if integer:
        x = pl.col(c)
    elif dtype == pl.Float64:
        x = pl.col(c).fill_nan(None)
    else:
        x = pl.col(c).cast(pl.Float64, strict=False).fill_nan(None)
    exprs = [x.alias("x")]
    if f.edges:
        lo, hi = f.edges[0], f.edges[-1]
        exprs += [
            (x < lo).fill_null(False).alias("below"),
            (lo - x).clip(lower_bound=0).alias("bg"),
            (x - hi).clip(lower_bound=0).alias("ag"),
        ]
    cols = gathered.select(exprs)
    xs = cols.get_column("x")
    valid = xs.is_not_null().to_numpy()
    counts = np.bincount(sid[valid], minlength=n)
    values = xs.drop_nulls().to_numpy()
    hists: list[tuple[int, ...]] = [()] * n
    belows, bgs, ags = [0] * n, [0.0] * n, [0.0] * n
    if f.edges:
        m = len(f.edges)
        if integer:
            info = _int_range(dtype)
            floors = [min(max(math.floor(e), info[0]), info[1]) for e in f.edges]
            edges = np.asarray(floors, dtype=values.dtype)  # the column's own integer type
        else:
            edges = np.asarray(f.edges, dtype=np.float64)
        hists = [(0,) * (m + 1)] * n
        ends = np.cumsum(counts)
        for i in np.flatnonzero(counts).tolist():  # cumulative counts at the edges from the sorted values
            run = np.sort(values[ends[i] - counts[i] : ends[i]])
            cum = np.searchsorted(run, edges, side="right")
            hists[i] = tuple(np.diff(cum, prepend=0, append=len(run)).tolist())
        belows = np.bincount(sid[cols.get_column("below").to_numpy()], minlength=n).tolist()
        bg, ag = cols.get_column("bg"), cols.get_column("ag")
        for i in np.flatnonzero(counts).tolist():
            a, k = int(bounds[i]), int(sizes[i])
            bgs[i] = float(bg.slice(a, k).sum() or 0.0)
            ags[i] = float(ag.slice(a, k).sum() or 0.0)
    out: list[FieldProfile] = []
    for i, (count, size) in enumerate(zip(counts.tolist(), sizes.tolist(), strict=True)):
        if count == 0:
            out.append(NumericProfile(0, size, None, None, 0.0, 0.0, hists[i], belows[i], bgs[i], ags[i]))
            continue
        part = xs.slice(int(bounds[i]), size)
        # polars' own kernels on the same values in the same order: the same rounding, the same sign of a zero
        mean, var, low, high = part.mean(), part.var(ddof=0), part.min(), part.max()
        assert mean is not None and var is not None and low is not None and high is not None
        out.append(
            NumericProfile(
                count, size - count, float(low), float(high), float(mean), float(var) * count,  # type: ignore[arg-type]
                hists[i], belows[i], bgs[i], ags[i],
            )
        )  # fmt: skip
    return out


def _categorical(
    gathered: pl.DataFrame, f: FieldSpec, kmv_k: int, sid: np.ndarray, sizes: np.ndarray
) -> list[FieldProfile]:
    """Counts per (slice, value) from one group-by, top ``cap`` per slice; the k smallest distinct hashes."""
    c, n = f.name, len(sizes)
    values = gathered.get_column(c).cast(pl.String)
    valid = values.is_not_null().to_numpy()
    counts = np.bincount(sid[valid], minlength=n)
    pairs: list[list[tuple[str, int]]] = [[] for _ in range(n)]
    sketches: list[tuple[int, ...]] = [()] * n
    if f.cap > 0:
        groups = pl.DataFrame({_SID: sid, "v": values}).filter(pl.col("v").is_not_null()).group_by(_SID, "v").len()
        gsid = groups.get_column(_SID).to_numpy()
        distinct = np.bincount(gsid, minlength=n)
        if distinct.max(initial=0) > f.cap:  # top cap by (count desc, value) in the slices over the cap
            groups = groups.sort([_SID, "len", "v"], descending=[False, True, False])
            gsid = groups.get_column(_SID).to_numpy()
            rank = np.arange(len(gsid)) - (np.cumsum(distinct) - distinct)[gsid]
            top = groups.filter(pl.Series(rank < f.cap))
        else:
            top = groups
        for s, v, k in top.iter_rows():
            pairs[s].append((v, k))
        hashes = groups.get_column("v").hash(seed=0).to_numpy()  # the groups are the distinct values per slice
        for i in np.flatnonzero(distinct).tolist():
            sketches[i] = tuple(np.sort(hashes[gsid == i])[:kmv_k].tolist())
    else:  # identifiers: no counts, only the sketch (the 4k smallest hashes first: no full sort)
        hashes = values.hash(seed=0).to_numpy()
        ends = np.cumsum(sizes)
        for i in np.flatnonzero(counts).tolist():
            a, b = int(ends[i] - sizes[i]), int(ends[i])
            sketches[i] = _smallest_distinct(hashes[a:b][valid[a:b]], kmv_k)
    out: list[FieldProfile] = []
    for i in range(n):
        got = tuple(sorted(pairs[i]))
        count = int(counts[i])
        other = count - sum(k for _, k in got)
        out.append(CategoricalProfile(count, int(sizes[i]) - count, got, other, sketches[i], f.cap, kmv_k))
    return out


def _smallest_distinct(hashes: np.ndarray, k: int) -> tuple[int, ...]:
    """The ``k`` smallest distinct values, ascending."""
    if len(hashes) > 4 * k:
        bound = np.partition(hashes, 4 * k - 1)[4 * k - 1]
        candidates = np.unique(hashes[hashes <= bound])
        if len(candidates) >= k:
            return tuple(candidates[:k].tolist())
    return tuple(np.unique(hashes)[:k].tolist())
