"""Integer numeric fields: exact moments and tails.

::

    if finite_edges(f.edges) and exact_ok(int(run[0]), int(run[-1]), len(run)):
        profile = exact_from_sorted(run, nulls, f, hist, below)

An integer field's mean, ``m2`` and tail gaps are computed **exactly** (Python integers, one correctly rounded
division) whenever the slice's values lie within ``±2²⁰``, it holds fewer than ``2²²`` of them
(:func:`exact_ok`) and the reference edges are finite (:func:`finite_edges`): from the int64 sums
``S1 = Σ v``, ``S2 = Σ v²`` of its sorted run, ``mean = S1 / count``, ``m2 = (count · S2 - S1²) / count``,
``below_gap = below · e0 - Σ_{v < e0} v`` and ``above_gap = Σ_{v > em} v - above · em``. Like every statistic
of a profile this is a function of the slice's multiset of values, and it is the exact value rounded once
(float pairwise sums are not). Counting values with ``bincount`` instead of sorting them was measured and
dropped: numpy sorts low-cardinality integers faster than the counting costs.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

from streams.profiles.fields import NumericProfile
from streams.profiles.spec import FieldSpec

__all__ = ["exact_from_sorted", "exact_ok", "finite_edges"]

_BOUND = 1 << 20  # |v| <= 2**20 and count < 2**22: S2 <= 2**62 fits an int64
_COUNT = 1 << 22


@functools.lru_cache(maxsize=256)
def finite_edges(edges: tuple[float, ...]) -> bool:
    """Whether the tail gaps can be computed exactly (Fractions of the edges): every edge finite."""
    return all(math.isfinite(e) for e in edges)


def exact_ok(low: int, high: int, count: int) -> bool:
    """Whether a slice's moments are computed exactly (a function of its values only)."""
    return low >= -_BOUND and high <= _BOUND and count < _COUNT


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
