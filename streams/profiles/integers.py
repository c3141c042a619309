"""Integer numeric fields: exact moments and tails, and counting instead of sorting when the range is small.

::

    lo_hi = small_range(column, height, n)          # (lo, size) when counting is cheaper than sorting, else None
    per_slice = counted(values, mask, f, lo_hi, slices)

An integer field's mean, ``m2`` and tail gaps are computed **exactly** (Python integers, one correctly rounded
division) whenever the slice's values lie within ``±2²⁰``, it holds fewer than ``2²²`` of them
(:func:`exact_ok`) and the reference edges are finite (:func:`finite_edges`): from the sums ``S1 = Σ v``,
``S2 = Σ v²``, ``mean = S1 / count``,
``m2 = (count · S2 - S1²) / count``, ``below_gap = below · e0 - Σ_{v < e0} v`` and
``above_gap = Σ_{v > em} v - above · em``. These sums come equally from a sorted run
(:func:`exact_from_sorted`) or from counts per value (:func:`counted`): the profile of a slice is the same
whichever path computed it (a batch may count while the slice alone would sort, or the reverse).

Counting: when a batch's values of the field span at most ``max(4096, rows)`` distinct integers per slice,
one ``bincount`` of ``value - lo + slice · size`` gives every slice's counts per value (no gather, no sort);
the histogram, ``below``, min and max are read from their cumulative sums.
"""

from __future__ import annotations

import functools
import itertools
import math
from fractions import Fraction

import numpy as np
import polars as pl

from streams.profiles.fields import FieldProfile, NumericProfile
from streams.profiles.spec import FieldSpec

__all__ = ["counted", "exact_from_sorted", "exact_ok", "finite_edges", "small_range"]

_BOUND = 1 << 20  # |v| <= 2**20 and count < 2**22: S2 <= 2**62 fits an int64
_COUNT = 1 << 22


@functools.lru_cache(maxsize=256)
def finite_edges(edges: tuple[float, ...]) -> bool:
    """Whether the tail gaps can be computed exactly (Fractions of the edges): every edge finite."""
    return all(math.isfinite(e) for e in edges)


def exact_ok(low: int, high: int, count: int) -> bool:
    """Whether a slice's moments are computed exactly (a function of its values only)."""
    return low >= -_BOUND and high <= _BOUND and count < _COUNT


def small_range(col: pl.Series, height: int, n: int) -> tuple[int, int] | None:
    """``(lo, size)`` of the column's values when counting them per slice is cheap and exact, else ``None``."""
    if height >= _COUNT:
        return None
    lo, hi = col.min(), col.max()
    if lo is None or hi is None:
        return None
    lo_i, hi_i = int(lo), int(hi)  # type: ignore[arg-type]
    size = hi_i - lo_i + 1
    if not exact_ok(lo_i, hi_i, 0) or size * n > max(4096, height):
        return None
    return lo_i, size


def _finish(
    f: FieldSpec, count: int, nulls: int, low: int, high: int, sums: tuple[int, int, int, int],
    hist: tuple[int, ...], below: int,
) -> NumericProfile:  # fmt: skip
    s1, s2, s_below, s_above = sums
    gaps = (0.0, 0.0)
    if f.edges:
        above = hist[-1]
        gaps = (
            float(below * Fraction(f.edges[0]) - s_below) if below else 0.0,
            float(s_above - above * Fraction(f.edges[-1])) if above else 0.0,
        )
    m2 = (count * s2 - s1 * s1) / count
    return NumericProfile(count, nulls, float(low), float(high), s1 / count + 0.0, m2, hist, below, *gaps)


def exact_from_sorted(run: np.ndarray, nulls: int, f: FieldSpec, hist: tuple[int, ...], below: int) -> NumericProfile:
    """The profile of a sorted run of integers for which :func:`exact_ok` holds, ``hist`` and ``below`` given."""
    xs = run.astype(np.int64)
    count = len(xs)
    above = hist[-1] if f.edges else 0
    sums = (
        int(xs.sum()), int((xs * xs).sum()), int(xs[:below].sum()) if below else 0,
        int(xs[count - above :].sum()) if above else 0,
    )  # fmt: skip
    return _finish(f, count, nulls, int(xs[0]), int(xs[-1]), sums, hist, below)


def counted(
    values: np.ndarray, mask: np.ndarray | None, ids: np.ndarray, sizes: list[int], f: FieldSpec,
    lo: int, size: int,
) -> list[FieldProfile]:  # fmt: skip
    """Every slice's profile of an integer field from counts per value (``mask``: the valid rows in a slice)."""
    n = len(sizes)
    key = values.astype(np.int64) - lo
    key += ids * size
    counts = np.bincount(key if mask is None else key[mask], minlength=n * size).reshape(n, size)
    vals = np.arange(lo, lo + size, dtype=np.int64)
    cum = np.zeros((n, size + 1), dtype=np.int64)
    np.cumsum(counts, axis=1, out=cum[:, 1:])
    weighted = np.zeros((n, size + 1), dtype=np.int64)
    np.cumsum(counts * vals, axis=1, out=weighted[:, 1:])
    s2 = (counts @ (vals * vals)).tolist()
    at: np.ndarray | None = None
    if f.edges:  # count(v <= e) = cum[floor(e) - lo + 1]; count(v < e0) = count(v <= ceil(e0) - 1)
        floors = np.floor(np.asarray(f.edges, dtype=np.float64)) - lo + 1
        first = np.ceil(f.edges[0]) - lo
        at = np.clip(np.append(floors, first), 0, size).astype(np.intp)
    out: list[FieldProfile] = []
    for i, rows in enumerate(sizes):
        count = int(cum[i, -1])
        if count == 0:
            hist0 = (0,) * (len(f.edges) + 1) if f.edges else ()
            out.append(NumericProfile(0, rows, None, None, 0.0, 0.0, hist0, 0))
            continue
        nz = np.flatnonzero(counts[i])
        hist: tuple[int, ...] = ()
        below = s_below = s_above = 0
        if at is not None:
            c = cum[i, at].tolist()
            *edges_cum, below = c
            hist = (edges_cum[0], *(b - a for a, b in itertools.pairwise(edges_cum)), count - edges_cum[-1])
            s_below = int(weighted[i, at[-1]])
            s_above = int(weighted[i, -1] - weighted[i, at[-2]])
        sums = (int(weighted[i, -1]), int(s2[i]), s_below, s_above)
        out.append(_finish(f, count, rows - count, lo + int(nz[0]), lo + int(nz[-1]), sums, hist, below))
    return out
