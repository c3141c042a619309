"""The distribution of a model version's prediction confidence, from its window's score histogram.

A :class:`~streams.profiles.prediction.ModelProfile` holds an exact, mergeable histogram of its valid scores on
``scoreBins`` equal-width bins ``[k / B, (k + 1) / B)`` over [0, 1] (1.0 in the last bin). From it alone:

* the **confidence histogram**: the score histogram folded at 1/2 onto ``max(s, 1 - s)``. A score bin below 1/2
  ``[k / B, (k + 1) / B)`` holds confidences in ``((B - 1 - k) / B, (B - k) / B]``, the mirror bin. With an even ``B``
  the edge 1/2 is a bin edge and the fold is exact: every confidence lies in its (closed) folded bin. With an odd
  ``B`` the middle score bin straddles 1/2: its scores fold onto ``[1/2, (B + 1) / 2B]``, a first confidence bin of
  half width, so the fold is exact there too (confidence edges ``1/2`` and every score edge above it);
* **quantiles** (:data:`QUANTILES`) of the score and of the confidence, on numpy's default ``'linear'`` definition
  (the order statistics at ranks ``floor(h)`` and ``floor(h) + 1``, ``h = q (n - 1)``, interpolated linearly), each
  order statistic estimated from the histogram with the values of its bin spread uniformly: the ``j``-th smallest of
  the ``c`` values of bin ``[a, b]`` is ``a + (j + 1/2) / c · (b - a)``. The true order statistic lies in that same
  bin, so each estimate, and each interpolation of two, is **within one bin width (1/scoreBins) of numpy's exact
  ``np.quantile``** of the window's valid scores (confidences);
* a **compact confidence histogram** of at most :data:`COMPACT_BINS` groups of whole folded bins (so its counts are
  exact), with its edges: ``[0.5, 0.55), …, [0.95, 1]`` for the default 100 score bins (:func:`compact_histogram`).

No valid score (count 0): every quantile is None (``null`` in the event), never 0; the histogram counts are 0.
Being functions of the integer histogram alone, they are bit-identical whatever the order the partials merged in.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "COMPACT_BINS",
    "QUANTILES",
    "compact_histogram",
    "confidence_distribution",
    "fold_confidence",
    "histogram_quantiles",
    "quantile_key",
    "score_edges",
]

#: the quantiles reported, for the score and for the confidence
QUANTILES = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)
#: at most this many bins in the compact confidence histogram
COMPACT_BINS = 10


def quantile_key(q: float) -> str:
    """``0.05`` -> ``"p05"``, ``0.5`` -> ``"p50"``."""
    return f"p{round(q * 100):02d}"


def score_edges(bins: int) -> tuple[float, ...]:
    """The ``bins + 1`` edges of the score bins: the floats nearest ``k / bins`` (as ``score_bin`` searches)."""
    return tuple(k / bins for k in range(bins + 1))


def fold_confidence(hist: Sequence[int]) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """The confidence histogram ``(edges, counts)`` over [1/2, 1] of a score histogram over [0, 1] (exact fold).

    Edges: 1/2, then every score edge above 1/2; ``ceil(B / 2)`` bins. Score bin ``k`` goes to confidence bin
    ``k - floor(B / 2)`` on or above 1/2 (the straddling middle bin of an odd ``B`` to bin 0) and to its mirror's,
    ``B - 1 - k - floor(B / 2)``, below."""
    bins = len(hist)
    if bins < 2:
        raise ValueError(f"a score histogram needs at least 2 bins, not {bins}")
    half = bins // 2
    edges = (0.5, *(j / bins for j in range(half + 1, bins + 1)))
    counts = [0] * (bins - half)
    for k, n in enumerate(hist):
        counts[k - half if k >= half else bins - 1 - k - half] += n
    return edges, tuple(counts)


def histogram_quantiles(
    edges: Sequence[float], counts: Sequence[int], quantiles: Sequence[float] = QUANTILES
) -> tuple[float | None, ...]:
    """numpy's ``'linear'`` quantiles of the values a histogram counts, each order statistic placed uniformly in its
    bin (module docstring): within the widest bin's width of the exact quantiles. None each when it counts nothing."""
    if len(edges) != len(counts) + 1:
        raise ValueError(f"{len(counts)} bin counts need {len(counts) + 1} edges, not {len(edges)}")
    cumulative = list(itertools.accumulate(counts))
    n = cumulative[-1] if cumulative else 0
    if n <= 0:
        return tuple(None for _ in quantiles)

    def order_statistic(i: int) -> float:  # the i-th smallest (0-based)
        b = bisect.bisect_right(cumulative, i)
        before = cumulative[b - 1] if b else 0
        low, high = edges[b], edges[b + 1]
        return low + (i - before + 0.5) / counts[b] * (high - low)

    out: list[float | None] = []
    for q in quantiles:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"a quantile must be in [0, 1], not {q!r}")
        h = q * (n - 1)
        i = math.floor(h)
        frac = h - i
        x = order_statistic(i)
        out.append(x if frac == 0.0 else x + frac * (order_statistic(i + 1) - x))
    return tuple(out)


def compact_histogram(
    edges: Sequence[float], counts: Sequence[int], at_most: int = COMPACT_BINS
) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """At most ``at_most`` contiguous groups of whole bins (so their counts stay exact): ``g`` bins each, ``g`` the
    smallest divisor of the bin count leaving at most ``at_most`` groups, when that leaves at least half as many
    (equal groups: 10 of 5 bins for 50 bins, 5 of 3 for 15); else ``ceil(bins / at_most)`` bins each, the last group
    shorter (13 bins: 7 groups)."""
    m = len(counts)
    size = next(g for g in range(1, m + 1) if m % g == 0 and m // g <= at_most)
    if m // size < at_most // 2 and m > at_most:
        size = -(-m // at_most)
    starts = range(0, m, size)
    return (*(edges[s] for s in starts), edges[m]), tuple(sum(counts[s : s + size]) for s in starts)


def confidence_distribution(hist: Sequence[int]) -> dict[str, Any]:
    """The ``confidence_distribution`` of a ``prediction.confidence`` event, from a version's score histogram."""
    bins = len(hist)
    conf_edges, conf_counts = fold_confidence(hist)
    keys = [quantile_key(q) for q in QUANTILES]
    compact_edges, compact_counts = compact_histogram(conf_edges, conf_counts)
    return {
        "score_bins": bins,
        "quantile_error_bound": 1.0 / bins,
        "confidence_quantiles": dict(zip(keys, histogram_quantiles(conf_edges, conf_counts), strict=True)),
        "score_quantiles": dict(zip(keys, histogram_quantiles(score_edges(bins), hist), strict=True)),
        "confidence_histogram": {"edges": list(compact_edges), "counts": list(compact_counts)},
    }
