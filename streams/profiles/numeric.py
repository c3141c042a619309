"""The numeric fields of every slice of a batch: floats sorted per slice, integers counted (or sorted).

::

    per_field = float_block(fields, columns, layout)      # per_field[j][i]: field j of slice i
    per_slice = integer_field(f, values, valid, dtype, layout)

* **floats** (and every numeric type but the integers, as float64; NaN is null): the fields' values of each slice
  are taken out into one 2-D block (a row per field, the slices one after the other) and each slice's part sorted
  in one call (NaN last). The histogram is the sorted run searched at the reference edges, ``min`` / ``max`` its
  ends, ``below`` and the tail gaps come from its ends, ``mean`` and ``m2`` (two-pass, ``Σ (v - mean)²``) are
  pairwise sums over it: functions of the slice's multiset of values (a zero's sign aside: ``-0.0`` reads ``0.0``).
* **integers** within ``±2²⁰`` (and the reference edges finite) are **counted**: one ``np.bincount`` of
  ``slice · width + (v - low)`` over the whole batch gives every slice's count per value, from which the histogram,
  ``below``, ``min`` / ``max`` and the exact int64 sums of :mod:`streams.profiles.integers` follow (no sort, no
  copy of the column per slice), when the value range is small next to the batch. Otherwise each slice's values
  are sorted in their own type (the histogram against the edges rounded down) and summed exactly when within
  ``±2²⁰``, else as float64 pairwise sums over the sorted run. The exact sums are the same numbers however they are
  reached, so counting and sorting give the same profile bit for bit.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import numpy as np
import polars as pl

from streams.profiles.fields import FieldProfile, NumericProfile, _int_range
from streams.profiles.integers import COUNT_MAX, exact_from_sorted, exact_ok, finish, finite_edges
from streams.profiles.layout import Layout, scratch
from streams.profiles.spec import FieldSpec

__all__ = ["INTS", "absent_numeric", "float_block", "integer_field"]

NP_INTS: dict[Any, type[np.integer[Any]]] = {
    pl.Int8: np.int8, pl.Int16: np.int16, pl.Int32: np.int32, pl.Int64: np.int64,
    pl.UInt8: np.uint8, pl.UInt16: np.uint16, pl.UInt32: np.uint32, pl.UInt64: np.uint64,
}  # fmt: skip
INTS = tuple(NP_INTS)
_BOUND = 1 << 20


def absent_numeric(f: FieldSpec, sizes: list[int]) -> list[FieldProfile]:
    """The profiles of slices holding only nulls (``sizes``: their rows)."""
    hist = (0,) * (len(f.edges) + 1) if f.edges else ()
    return [NumericProfile(0, m, None, None, 0.0, 0.0, hist, 0) for m in sizes]


def _histograms(cum: np.ndarray, counts: np.ndarray) -> list[list[int]]:
    """Per slice, the right-closed bins from the cumulative counts at the edges (``cum``: slices x edges)."""
    padded = np.zeros((cum.shape[0], cum.shape[1] + 2), dtype=np.int64)
    padded[:, 1:-1] = cum
    padded[:, -1] = counts
    out: list[list[int]] = np.diff(padded, axis=1).tolist()
    return out


def float_block(fields: list[FieldSpec], columns: list[np.ndarray], at: Layout) -> list[list[FieldProfile]]:
    """The numeric fields read as float64 (NaN: null), every slice, from one 2-D block sorted per slice."""
    sizes, starts = at.sizes.tolist(), at.starts.tolist()
    rows = starts[-1]
    block = scratch("block", len(fields) * rows, np.float64).reshape(len(fields), rows)
    for j, c in enumerate(columns):
        at.pack_into(c, block[j])
    per: list[list[tuple[Any, ...]]] = [[] for _ in fields]
    cums = [np.zeros((at.n, len(f.edges)), dtype=np.int64) for f in fields]
    counts = np.zeros((len(fields), at.n), dtype=np.int64)
    edges = [np.asarray(f.edges, dtype=np.float64) for f in fields]
    firsts = [np.asarray([f.edges[0] if f.edges else 0.0, np.nan]) for f in fields]
    squares = scratch("squares", len(fields) * rows, np.float64).reshape(len(fields), rows)
    for i, (a, b) in enumerate(itertools.pairwise(starts)):
        if a == b:
            continue
        part = block[:, a:b]
        part.sort(axis=1)
        means = np.zeros(len(fields))
        lows = []
        for j, row in enumerate(part):
            below, count = np.searchsorted(row, firsts[j], side="left").tolist()
            counts[j, i] = count
            lows.append(below)
            if count:
                means[j] = float(row[:count].sum()) / count + 0.0  # + 0.0: a zero's sign is not of the multiset
                if len(edges[j]):
                    cums[j][i] = np.searchsorted(row[:count], edges[j], side="right")
        dev = squares[:, a:b]
        np.subtract(part, means[:, None], out=dev)
        np.multiply(dev, dev, out=dev)
        for j, (f, row, d) in enumerate(zip(fields, part, dev, strict=True)):
            count = int(counts[j, i])
            if not count:
                continue
            below, gaps = lows[j] if f.edges else 0, (0.0, 0.0)
            if f.edges:
                top = int(cums[j][i, -1])
                gaps = (
                    float(np.sum(f.edges[0] - row[:below])) if below else 0.0,
                    float(np.sum(row[top:count] - f.edges[-1])) if top < count else 0.0,
                )
            low, high = float(row[0]) + 0.0, float(row[count - 1]) + 0.0
            per[j].append((i, low, high, float(means[j]), float(d[:count].sum()), below, gaps))
    out: list[list[FieldProfile]] = []
    for j, f in enumerate(fields):
        hists = _histograms(cums[j], counts[j]) if f.edges else None
        got = absent_numeric(f, sizes)
        for i, low, high, mean, m2, below, gaps in per[j]:
            count = int(counts[j, i])
            hist = tuple(hists[i]) if hists is not None else ()
            got[i] = NumericProfile(count, sizes[i] - count, low, high, mean, m2, hist, below, *gaps)
        out.append(got)
    return out


@functools.lru_cache(maxsize=256)
def _int_edges(edges: tuple[float, ...], dtype: pl.DataType) -> tuple[np.ndarray, int, int, int, int]:
    """The edges rounded down into the integer type (``v <= e  <=>  v <= floor(e)``), its range, ``ceil(e0)``, and
    how many edges lie below the type's range (no value is at or below them: their cumulative count is 0)."""
    lo, hi = _int_range(dtype)
    inside = [min(max(e, lo - 1.0), hi + 1.0) for e in edges]  # an infinite edge: just outside the type's range
    floors = np.asarray([min(max(math.floor(e), lo), hi) for e in inside], dtype=NP_INTS[dtype])
    under = sum(1 for e in inside if math.floor(e) < lo)
    return floors, lo, hi, math.ceil(inside[0]), under


def integer_field(
    f: FieldSpec, values: np.ndarray, valid: np.ndarray | None, dtype: pl.DataType, at: Layout
) -> list[FieldProfile]:
    """An integer field (nulls filled with 0, ``valid`` false there), every slice: counted or sorted."""
    rows = len(values)
    if rows and finite_edges(f.edges) and rows < COUNT_MAX:
        low, high = int(values.min()), int(values.max())
        width = high - low + 1
        if low >= -_BOUND and high <= _BOUND and width * (at.n + 1) <= rows // 2 + 1024:
            return _counted(f, values, valid, low, width, at)
    with np.errstate(invalid="ignore", over="ignore"):
        return _sorted(f, values, valid, dtype, at)


@functools.lru_cache(maxsize=1024)
def _weights(edges: tuple[float, ...], low: int, width: int) -> tuple[np.ndarray, np.ndarray, int]:
    """For counts of the values ``low .. low + width - 1``: the columns of the cumulative counts at the edges
    (``v <= e  <=>  v <= floor(e)``), the weights of the sums (``v``, ``v²``, ``v`` below ``e0``, ``v`` above the last
    edge: ``v < e0  <=>  v < ceil(e0)``) and the column of ``below``."""
    vals = np.arange(low, low + width, dtype=np.int64)
    weights = np.zeros((width, 4), dtype=np.int64)
    weights[:, 0], weights[:, 1] = vals, vals * vals
    columns, first = np.zeros(0, dtype=np.intp), 0
    if edges:
        columns = np.asarray([min(max(math.floor(e) - low + 1, 0), width) for e in edges], dtype=np.intp)
        first = min(max(math.ceil(edges[0]) - low, 0), width)
        weights[:first, 2] = vals[:first]
        weights[columns[-1] :, 3] = vals[columns[-1] :]
    return columns, weights, first


def _counted(
    f: FieldSpec, values: np.ndarray, valid: np.ndarray | None, low: int, width: int, at: Layout
) -> list[FieldProfile]:
    """Every slice's exact profile from the count of each value per slice (one bincount over the batch)."""
    n, sizes = at.n, at.sizes.tolist()
    key = at.keys(width, values, low, valid)  # (values within ±2**20 here)
    table = np.bincount(key, minlength=(n + 1) * width)[: n * width].reshape(n, width)
    cum = np.zeros((n, width + 1), dtype=np.int64)
    np.cumsum(table, axis=1, out=cum[:, 1:])
    counts = cum[:, -1]
    columns, weights, first = _weights(f.edges, low, width)
    sums = (table @ weights).tolist()
    hists = _histograms(cum[:, columns], counts) if f.edges else [[] for _ in range(n)]
    below = cum[:, first].tolist() if f.edges else [0] * n
    seen = table > 0
    lows = np.argmax(seen, axis=1).tolist()
    highs = (width - 1 - np.argmax(seen[:, ::-1], axis=1)).tolist()
    out = absent_numeric(f, sizes)
    for i, count in enumerate(counts.tolist()):
        if count:
            got = finish(f, count, sizes[i] - count, low + lows[i], low + highs[i], sums[i], tuple(hists[i]), below[i])
            out[i] = got
    return out


def _sorted(f: FieldSpec, values: np.ndarray, valid: np.ndarray | None, dtype: pl.DataType, at: Layout) -> list:
    """Every slice's profile from its values sorted in their own type."""
    sizes = at.sizes.tolist()
    buf, starts = at.pack(values, valid)
    edges, lo_t, hi_t, first, under = (np.zeros(0), 0, 0, 0, 0)
    if f.edges:
        edges, lo_t, hi_t, first, under = _int_edges(f.edges, dtype)
    out = absent_numeric(f, sizes)
    bounds = starts.tolist()
    cums = np.zeros((at.n, len(f.edges)), dtype=np.int64)
    runs: list[tuple[int, np.ndarray, int]] = []
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        if a == b:
            continue
        run = buf[a:b]
        run.sort()
        below = 0
        if f.edges:
            cums[i] = np.searchsorted(run, edges, side="right")
            cums[i, :under] = 0  # (an edge below the type's range, rounded up into it, would count its minimum)
            below = b - a if first > hi_t else 0 if first <= lo_t else int(np.searchsorted(run, first, "left"))
        runs.append((i, run, below))
    counts = np.diff(starts)
    hists = _histograms(cums, counts) if f.edges else None
    for i, run, below in runs:
        count = len(run)
        hist = tuple(hists[i]) if hists is not None else ()
        if finite_edges(f.edges) and exact_ok(int(run[0]), int(run[-1]), count):
            out[i] = exact_from_sorted(run, sizes[i] - count, f, hist, below)
            continue
        xs = run.astype(np.float64)
        mean = float(np.sum(xs)) / count + 0.0
        dev = xs - mean
        m2 = float(np.sum(dev * dev))
        gaps = (0.0, 0.0)
        if f.edges:
            top = count - hist[-1]
            gaps = (
                float(np.sum(f.edges[0] - xs[:below])) if below else 0.0,
                float(np.sum(xs[top:] - f.edges[-1])) if top < count else 0.0,
            )
        out[i] = NumericProfile(count, sizes[i] - count, float(xs[0]) + 0.0, float(xs[-1]) + 0.0, mean, m2, hist,
                                below, *gaps)  # fmt: skip
    return out
