"""The per-field reductions of a batch, for every slice of it at once: numpy on the columns' buffers.

::

    per_slice = slice_fields(frame, spec, slice_ids, n)   # per_slice[i][name]: the FieldProfile of slice i

Row ``r`` belongs to slice ``slice_ids[r]`` (``-1``: to none). :func:`~streams.profiles.profile.profile_frame` is
the one-slice case, so a slice profiled among others and the same rows profiled alone are the same computation.
The frame is never gathered: one polars ``select`` hashes the text fields (polars' ``hash(seed=0)``, the hash of
the distinct-count sketch) and fills nulls; the rest reads the columns as numpy arrays. A slice whose rows are one
block of the batch (a batch grouped by partition and window) is read in place; interleaved slices are taken out
once per column (a numpy gather of numbers or hashes, never of text).

* **numeric**: per slice, the valid values (NaN is null) are taken out in slice order and sorted — the float
  fields of a slice together, one 2-D block sorted in one call (:func:`_numeric_block`), other numeric types
  (e.g. 128-bit integers and decimals) as float64, integers in their own type. The histogram is the sorted run
  searched at the reference edges (integers against the edges rounded down); ``min`` / ``max`` are its ends,
  ``below`` and the tail gaps come from its ends, ``mean`` and ``m2`` (two-pass, ``Σ (v - mean)²``) are pairwise
  sums over it, except that an integer slice within ``±2²⁰`` gets its mean, ``m2`` and tail gaps exactly (int64
  sums, one rounding: :mod:`streams.profiles.integers`). Every statistic is a
  function of the *multiset* of the slice's values (a zero's sign aside: ``-0.0`` reads ``0.0``), so it depends
  neither on the order of the rows nor on the other slices;
* **categorical**: the value hashes sorted and counted per slice, each hash named by the first row that has
  it (remembered across batches). The distinct-count sketch is the smallest of those hashes. Counting hashes is
  exact unless two distinct values of one field collide on the 64-bit hash (probability ``d² / 2⁶⁵`` for ``d``
  distinct values: ~2·10⁻¹⁵ at the cap of 256);
* **booleans**: counted per slice; **identifiers** (``cap = 0``): only the k smallest distinct hashes.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import numpy as np
import polars as pl

from streams.profiles.fields import CategoricalProfile, FieldProfile, NumericProfile, _cap, _int_range, hash_strings
from streams.profiles.integers import exact_from_sorted, exact_ok, finite_edges
from streams.profiles.spec import FieldSpec, Kind, ProfileSpec

__all__ = ["slice_fields", "spec_id"]

_NP: dict[Any, type[np.integer[Any]]] = {
    pl.Int8: np.int8, pl.Int16: np.int16, pl.Int32: np.int32, pl.Int64: np.int64,
    pl.UInt8: np.uint8, pl.UInt16: np.uint16, pl.UInt32: np.uint32, pl.UInt64: np.uint64,
}  # fmt: skip
_INTS = tuple(_NP)
#: hash -> value, for the hashes seen (values recur from batch to batch); forgotten when it grows past this
_NAMES_MAX = 1 << 16
_names: dict[int, str] = {}


class _Slices:
    """Where each slice's rows are: contiguous blocks of the frame (read as views), else gathered in slice order."""

    def __init__(self, ids: np.ndarray, n: int) -> None:
        self.ids, self.n = ids, n
        kept = ids >= 0
        self.kept: np.ndarray | None = None if kept.all() else kept
        self.sizes = np.bincount(ids[kept] if self.kept is not None else ids, minlength=n)
        starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1]))) if ids.size else np.zeros(0, int)
        blocks = ids[starts]
        mine = np.flatnonzero(blocks >= 0)
        self.order: np.ndarray | None = None
        if len(mine) == np.count_nonzero(self.sizes):  # each slice is one block of rows (a batch grouped by slice)
            ends = np.append(starts[1:], len(ids))
            self.bounds = [(0, 0)] * n
            for b, a, e in zip(blocks[mine].tolist(), starts[mine].tolist(), ends[mine].tolist(), strict=True):
                self.bounds[b] = (a, e)
        else:  # rows interleaved: gathered once per column in slice order (stable; by slice for few slices)
            if n <= 16:
                self.order = np.concatenate([np.flatnonzero(ids == i) for i in range(n)])
            else:
                keep = np.flatnonzero(kept)
                self.order = keep[np.argsort(ids[keep], kind="stable")]
            ends = np.cumsum(self.sizes).tolist()
            self.bounds = [(e - m, e) for e, m in zip(ends, self.sizes.tolist(), strict=True)]

    def runs(self, values: np.ndarray, valid: np.ndarray | None) -> list[np.ndarray]:
        """The valid values of each slice, in frame order (views or copies: not to be written to)."""
        if self.order is not None:
            values = values[self.order]
            valid = None if valid is None else valid[self.order]
        if valid is None:
            return [values[a:b] for a, b in self.bounds]
        return [values[a:b][valid[a:b]] for a, b in self.bounds]

    def count(self, mask: np.ndarray) -> list[int]:
        """The rows of each slice where ``mask`` holds."""
        m = mask if self.order is None else mask[self.order]
        return [int(np.count_nonzero(m[a:b])) for a, b in self.bounds]


def spec_id(spec: ProfileSpec) -> str:
    """``spec.binning_id`` (a sha256 of the whole spec, ~2 ms with 20 fields), remembered per spec object."""
    got = _spec_ids.get(id(spec))
    if got is None or got[0] is not spec:
        if len(_spec_ids) >= 64:
            _spec_ids.clear()
        got = _spec_ids[id(spec)] = (spec, spec.binning_id)
    return got[1]


_spec_ids: dict[int, tuple[ProfileSpec, str]] = {}


def slice_fields(frame: pl.DataFrame, spec: ProfileSpec, ids: np.ndarray, n: int) -> list[dict[str, FieldProfile]]:
    """The field profiles of slices ``0 .. n-1`` of ``frame`` (``ids``: int64, one per row, ``-1`` for none)."""
    s = _Slices(ids, n)
    out: list[dict[str, FieldProfile]] = [{} for _ in range(n)]
    schema = frame.schema
    # float columns are profiled together, one 2-D block per slice
    block = [f for f in spec.fields if f.kind is Kind.NUMERIC and schema.get(f.name) in _FLOATS]
    in_block = {f.name for f in block}
    # one select for what the other numpy arrays need (nulls filled, masks, casts, hashes)
    columns = tuple(
        (None, False) if f.name in in_block else (schema.get(f.name), _has_nulls(frame, schema, f.name))
        for f in spec.fields
    )
    exprs = _expressions(spec, columns)
    prepared = frame.select(exprs) if exprs else frame.clear()
    if block:
        with np.errstate(invalid="ignore", over="ignore"):  # infinite values: infinite or NaN moments and gaps
            per_block = _numeric_block(block, [frame.get_column(f.name).to_numpy() for f in block], s)
        for f, per in zip(block, per_block, strict=True):
            for i, fp in enumerate(per):
                out[i][f.name] = fp
    for f in spec.fields:
        if f.name in in_block:
            continue
        if f.name not in schema:  # an absent column is all nulls
            per = _absent(f, spec.kmv_k, s.sizes)
        else:
            per = _field(f, schema[f.name], frame, prepared, spec.kmv_k, s)
        for i, fp in enumerate(per):
            out[i][f.name] = fp
    return out


_FLOATS = (pl.Float64, pl.Float32)  # read as float64 exactly; integers are sorted in their own type


def _has_nulls(frame: pl.DataFrame, schema: pl.Schema, name: str) -> bool:
    return name in schema and frame.get_column(name).null_count() > 0


def _expressions(spec: ProfileSpec, columns: tuple[tuple[pl.DataType | None, bool], ...]) -> list[pl.Expr]:
    """The prepared columns' expressions, built once per spec and column types (building costs ~0.3 ms)."""
    key = (id(spec), columns)
    got = _built.get(key)
    if got is None or got[0] is not spec:
        if len(_built) >= 256:
            _built.clear()
        exprs = [
            e for f, (dtype, nulls) in zip(spec.fields, columns, strict=True) if dtype is not None
            for e in _prepare(f, dtype, nulls)
        ]  # fmt: skip
        got = _built[key] = (spec, exprs)
    return got[1]


_built: dict[tuple[int, tuple[tuple[pl.DataType | None, bool], ...]], tuple[ProfileSpec, list[pl.Expr]]] = {}


def _prepare(f: FieldSpec, dtype: pl.DataType, nulls: bool) -> list[pl.Expr]:
    c = pl.col(f.name)
    if f.kind is Kind.NUMERIC and dtype in _INTS:
        return [c.fill_null(0).alias(f"{f.name}\x1fv"), c.is_not_null().alias(f"{f.name}\x1fok")] if nulls else []
    if f.kind is Kind.NUMERIC:  # NaN is null; anything but float64 cast to float64 (never raising on data)
        return [] if dtype == pl.Float64 else [c.cast(pl.Float64, strict=False).alias(f"{f.name}\x1fv")]
    out = [c.is_not_null().alias(f"{f.name}\x1fok")] if nulls else []
    if dtype == pl.Boolean:
        return [*out, c.fill_null(False).alias(f"{f.name}\x1fv")] if nulls else out
    return [*out, c.cast(pl.String).hash(seed=0).alias(f"{f.name}\x1fv")]


def _field(
    f: FieldSpec, dtype: pl.DataType, frame: pl.DataFrame, prepared: pl.DataFrame, kmv_k: int, s: _Slices
) -> list[FieldProfile]:
    cols = prepared.columns
    v, ok = f"{f.name}\x1fv", f"{f.name}\x1fok"
    values = (prepared if v in cols else frame).get_column(v if v in cols else f.name).to_numpy()
    valid = prepared.get_column(ok).to_numpy() if ok in cols else None
    if f.kind is Kind.NUMERIC:
        if dtype not in _INTS:
            nan = np.isnan(values)
            valid = ~nan if nan.any() else None
        with np.errstate(invalid="ignore", over="ignore"):  # infinite values: infinite or NaN moments and gaps
            return _numeric(values, valid, f, dtype if dtype in _INTS else pl.Float64(), s)
    if dtype == pl.Boolean:
        return _boolean(values, valid, f, kmv_k, s)
    return _text(frame.get_column(f.name), values, valid, f, kmv_k, s)


def _absent(f: FieldSpec, kmv_k: int, sizes: np.ndarray) -> list[FieldProfile]:
    if f.kind is Kind.NUMERIC:
        hist = (0,) * (len(f.edges) + 1) if f.edges else ()
        return [NumericProfile(0, int(m), None, None, 0.0, 0.0, hist, 0) for m in sizes.tolist()]
    return [CategoricalProfile(0, int(m), (), 0, (), f.cap, kmv_k) for m in sizes.tolist()]


@functools.lru_cache(maxsize=256)
def _int_edges(edges: tuple[float, ...], dtype: pl.DataType) -> tuple[np.ndarray, int, int, int, int]:
    """The edges rounded down into the integer type (``v <= e  <=>  v <= floor(e)``), its range, ``ceil(e0)``, and
    how many edges lie below the type's range (no value is at or below them: their cumulative count is 0)."""
    lo, hi = _int_range(dtype)
    inside = [min(max(e, lo - 1.0), hi + 1.0) for e in edges]  # an infinite edge: just outside the type's range
    floors = np.asarray([min(max(math.floor(e), lo), hi) for e in inside], dtype=_NP[dtype])
    under = sum(1 for e in edges if e < lo)  # exact (int against float); ``lo - 1.0`` is ``lo`` itself at -2**63
    return floors, lo, hi, math.ceil(inside[0]), under


def _numeric(
    values: np.ndarray, valid: np.ndarray | None, f: FieldSpec, dtype: pl.DataType, s: _Slices
) -> list[FieldProfile]:
    integer = dtype in _INTS
    edges, lo_t, hi_t, first, under = (np.asarray(f.edges, dtype=np.float64), 0, 0, 0, 0)
    if integer and f.edges:
        edges, lo_t, hi_t, first, under = _int_edges(f.edges, dtype)
    out: list[FieldProfile] = []
    for run, size in zip(s.runs(values, valid), s.sizes.tolist(), strict=True):
        count = len(run)
        if count == 0:
            out.append(_absent(f, 0, np.asarray([size]))[0])
            continue
        run = np.sort(run)
        hist: tuple[int, ...] = ()
        below, gaps = 0, (0.0, 0.0)
        if f.edges:
            cum = np.searchsorted(run, edges, side="right").tolist()
            cum[:under] = [0] * under  # an edge below the type's range, rounded up into it, would count its minimum
            hist = (cum[0], *(y - x for x, y in itertools.pairwise(cum)), count - cum[-1])
            if integer:  # v < e0  <=>  v < ceil(e0)
                # ``first`` in the run's own type: a Python int against uint64 would be compared in float64
                at = run.dtype.type(first) if lo_t < first <= hi_t else first
                below = count if first > hi_t else 0 if first <= lo_t else int(np.searchsorted(run, at, "left"))
            else:
                below = int(np.searchsorted(run, f.edges[0], side="left"))
        if integer and finite_edges(f.edges) and exact_ok(int(run[0]), int(run[-1]), count):
            out.append(exact_from_sorted(run, size - count, f, hist, below))
            continue
        xs = run.astype(np.float64) if integer else run
        mean = float(np.sum(xs)) / count + 0.0  # + 0.0: the sign of a zero is not part of the multiset
        dev = xs - mean
        m2 = float(np.sum(dev * dev))
        if f.edges:
            lo, hi = f.edges[0], f.edges[-1]
            gaps = (
                float(np.sum(lo - xs[:below])) if below else 0.0,
                float(np.sum(xs[cum[-1] :] - hi)) if cum[-1] < count else 0.0,
            )
        low, high = float(xs[0]) + 0.0, float(xs[-1]) + 0.0
        if integer:  # beyond 2**53 rounded outwards: the reference's edges (its min and max) must hold its values
            low, high = _outward(low, int(run[0]), -math.inf), _outward(high, int(run[-1]), math.inf)
        out.append(NumericProfile(count, size - count, low, high, mean, m2, hist, below, *gaps))
    return out


def _outward(x: float, exact: int, direction: float) -> float:
    """``x`` (the float nearest ``exact``), or its neighbour toward ``direction`` when it lies on the wrong side."""
    if (direction < 0 and x > exact) or (direction > 0 and x < exact):
        return float(np.nextafter(x, direction))
    return x


def _numeric_block(fields: list[FieldSpec], columns: list[np.ndarray], s: _Slices) -> list[list[FieldProfile]]:
    """The numeric fields whose values float64 holds exactly, per slice in one 2-D block (a row per field).

    Each row holds the slice's values in float64 (null: NaN), sorted in place (NaN last): every statistic of
    :func:`_numeric` from the row's first ``count`` values, computed the same way (the same float operations on
    the same sorted values: the same bits). An integer ``v`` against an edge ``e``: ``v <= e`` and ``v < e`` hold
    in float64 exactly as in the integers.
    """
    out: list[list[FieldProfile]] = [[] for _ in fields]
    edges = [np.asarray(f.edges, dtype=np.float64) for f in fields]
    if s.order is not None:
        columns = [c[s.order] for c in columns]
    for (a, b), size in zip(s.bounds, s.sizes.tolist(), strict=True):
        if size == 0:
            for j, f in enumerate(fields):
                out[j].append(_absent(f, 0, np.asarray([0]))[0])
            continue
        block = np.empty((len(fields), size), dtype=np.float64)
        for j, c in enumerate(columns):
            block[j] = c[a:b]
        block.sort(axis=1)
        counts = (size - np.count_nonzero(np.isnan(block), axis=1)).tolist()
        means = [float(row[:m].sum()) / m + 0.0 if m else 0.0 for row, m in zip(block, counts, strict=True)]
        dev = block - np.asarray(means)[:, None]
        dev *= dev
        for j, (f, row, d, count) in enumerate(zip(fields, block, dev, counts, strict=True)):
            if count == 0:
                out[j].append(_absent(f, 0, np.asarray([size]))[0])
                continue
            xs = row[:count]
            m2 = float(d[:count].sum())
            hist: tuple[int, ...] = ()
            below, gaps = 0, (0.0, 0.0)
            if f.edges:
                cum = np.searchsorted(xs, edges[j], side="right").tolist()
                hist = (cum[0], *(y - x for x, y in itertools.pairwise(cum)), count - cum[-1])
                below = int(np.searchsorted(xs, f.edges[0], side="left"))
                lo, hi = f.edges[0], f.edges[-1]
                gaps = (
                    float(np.sum(lo - xs[:below])) if below else 0.0,
                    float(np.sum(xs[cum[-1] :] - hi)) if cum[-1] < count else 0.0,
                )
            low, high = float(xs[0]) + 0.0, float(xs[-1]) + 0.0
            out[j].append(NumericProfile(count, size - count, low, high, means[j], m2, hist, below, *gaps))
    return out


def _boolean(true: np.ndarray, valid: np.ndarray | None, f: FieldSpec, kmv_k: int, s: _Slices) -> list[FieldProfile]:
    counts = s.sizes.tolist() if valid is None else s.count(valid)
    out: list[FieldProfile] = []
    for count, t, size in zip(counts, s.count(true), s.sizes.tolist(), strict=True):
        found = {k: m for k, m in (("false", count - t), ("true", t)) if m}
        pairs = _cap(found, f.cap)[0] if f.cap > 0 else ()
        sketch = tuple(sorted(hash_strings(sorted(found))))[:kmv_k]
        other = count - sum(m for _, m in pairs)
        out.append(CategoricalProfile(count, size - count, pairs, other, sketch, f.cap, kmv_k))
    return out


def _text(
    col: pl.Series, hashes: np.ndarray, valid: np.ndarray | None, f: FieldSpec, kmv_k: int, s: _Slices
) -> list[FieldProfile]:
    out: list[FieldProfile] = []
    for run, size in zip(s.runs(hashes, valid), s.sizes.tolist(), strict=True):
        count = len(run)
        pairs: tuple[tuple[str, int], ...] = ()
        if f.cap > 0:  # exact counts per value (hash), named by their values
            distinct, per = _counted(run)
            names = _name(col, hashes, distinct)
            pairs, _ = _cap(dict(zip(names, per.tolist(), strict=True)), f.cap)
            sketch = tuple(distinct[:kmv_k].tolist())
        else:  # identifiers: no counts, the k smallest distinct hashes (the 4k smallest first: no full sort)
            sketch = _smallest_distinct(run, kmv_k)
        other = count - sum(m for _, m in pairs)
        out.append(CategoricalProfile(count, size - count, pairs, other, sketch, f.cap, kmv_k))
    return out


def _counted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values, ascending, and how often each occurs (a sort: cheaper than np.unique's hashing)."""
    ordered = np.sort(values)
    if not len(ordered):
        return ordered, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    return ordered[starts], np.diff(np.append(starts, len(ordered)))


def _name(col: pl.Series, hashes: np.ndarray, distinct: np.ndarray) -> list[str]:
    """The value of each hash: remembered, or read from the first row that has it."""
    keys = distinct.tolist()
    known = {h: v for h in keys if (v := _names.get(h)) is not None}  # (safe if another thread clears it)
    if len(known) < len(keys):
        missing = np.asarray([h for h in keys if h not in known], dtype=np.uint64)
        rows = np.flatnonzero(np.isin(hashes, missing))
        found, first = np.unique(hashes[rows], return_index=True)
        new = dict(zip(found.tolist(), col.gather(rows[first]).cast(pl.String).to_list(), strict=True))
        if len(_names) + len(new) > _NAMES_MAX:
            _names.clear()
        _names.update(new)
        known |= new
    return [known[h] for h in keys]


def _smallest_distinct(hashes: np.ndarray, k: int) -> tuple[int, ...]:
    """The ``k`` smallest distinct values, ascending."""
    if len(hashes) > 4 * k:
        bound = np.partition(hashes, 4 * k - 1)[4 * k - 1]
        candidates = _counted(hashes[hashes <= bound])[0]
        if len(candidates) >= k:
            return tuple(candidates[:k].tolist())
    return tuple(_counted(hashes)[0][:k].tolist())
