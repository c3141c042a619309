"""Drift statistics on binned distributions: PSI, Jensen–Shannon, Wasserstein, KS, χ².

Pure functions of count vectors (no numpy, no scipy at run time: scipy is the tests' oracle).
Every function takes the reference first and the current distribution second.

Numeric histograms use the right-closed bins of :mod:`streams.profiles.spec`, so the empirical
CDFs are exact at every edge. From bins:

* the KS statistic is the largest CDF gap *at the edges* and just below the first (from the counts below it);
  the exact two-sample statistic is at most ``max over bins of max(p_i, q_i)`` larger (the mass a gap can grow
  by inside one bin);
* the Wasserstein-1 distance integrates ``|F - G|`` with both CDFs linear inside each bin (mass
  spread uniformly): off by at most ``sum over inner bins of width_i * max(p_i, q_i)``, usually
  far less; the tails beyond the reference range are exact (per-profile sums of the distance
  beyond the outer edges), and reference building adds finer edges in the outermost bins.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

__all__ = [
    "chi2_sf",
    "chi_square",
    "group_bins",
    "js_distance",
    "ks_pvalue",
    "ks_statistic",
    "psi",
    "shares",
    "wasserstein",
]

PSI_EPSILON = 1e-4  # Evidently's floor for an empty bin (see _floored)


def shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    return [c / total for c in counts] if total > 0 else [0.0] * len(counts)


def _floored(p: list[float], eps: float) -> list[float]:
    """Empty bins at ``eps``, or at the smallest observed share / 1e6 when that is below ``eps`` (so an empty bin
    never weighs more than an observed one); observed shares as they are (Evidently's ``feel_zeroes``)."""
    seen = [x for x in p if x > 0]
    floor = min(eps, min(seen) / 1e6) if seen and min(seen) <= eps else eps
    return [x if x > 0 else floor for x in p]


def psi(reference: Sequence[float], current: Sequence[float], eps: float = PSI_EPSILON) -> float:
    """Population stability index: ``sum (q - p) ln(q / p)``, empty bins floored (:func:`_floored`); NaN (undefined)
    when either distribution is empty."""
    if not sum(reference) or not sum(current):
        return math.nan
    p, q = _floored(shares(reference), eps), _floored(shares(current), eps)
    return sum((qi - pi) * math.log(qi / pi) for pi, qi in zip(p, q, strict=True))


def js_distance(reference: Sequence[float], current: Sequence[float]) -> float:
    """Jensen–Shannon distance, natural log (as ``scipy.spatial.distance.jensenshannon``): in [0, sqrt(ln 2)]; NaN
    (undefined) when either distribution is empty."""
    if not sum(reference) or not sum(current):
        return math.nan
    p, q = shares(reference), shares(current)
    div = 0.0
    for pi, qi in zip(p, q, strict=True):
        m = (pi + qi) / 2
        if pi > 0:
            div += pi * math.log(pi / m) / 2
        if qi > 0:
            div += qi * math.log(qi / m) / 2
    return math.sqrt(max(div, 0.0))


def ks_statistic(
    reference: Sequence[float], current: Sequence[float], below: tuple[float, float] = (0.0, 0.0)
) -> float:
    """Largest gap between the two cumulative distributions at the bin edges and just below the first one, where
    ``below`` (the counts of values strictly below the first edge, per distribution) gives the CDFs: a window's values
    under the reference minimum otherwise share the first bin with the minimum itself. NaN when either is empty."""
    n_ref, n_cur = float(sum(reference)), float(sum(current))
    if not n_ref or not n_cur:
        return math.nan
    p, q = shares(reference), shares(current)
    gap = abs(below[0] / n_ref - below[1] / n_cur)
    cp = cq = 0.0
    for pi, qi in zip(p, q, strict=True):
        cp, cq = cp + pi, cq + qi
        gap = max(gap, abs(cp - cq))
    return gap


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    """Asymptotic two-sample KS p-value (Kolmogorov distribution, Stephens' small-sample correction)."""
    if n <= 0 or m <= 0 or math.isnan(statistic):
        return math.nan
    ne = n * m / (n + m)
    lam = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * statistic
    if lam < 0.2:
        return 1.0
    total = 0.0
    for k in range(1, 101):
        term = 2 * (-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam)
        total += term
        if abs(term) < 1e-12:
            break
    return min(max(total, 0.0), 1.0)


def wasserstein(
    edges: Sequence[float],
    reference: Sequence[float],
    current: Sequence[float],
    reference_tails: tuple[float, float] = (0.0, 0.0),
    current_tails: tuple[float, float] = (0.0, 0.0),
) -> float:
    """W1 between two histograms on the right-closed bins of ``edges`` (``len(edges) + 1`` counts).

    Inside ``[e0, em]`` both CDFs are taken linear within each bin. Outside, ``*_tails`` are
    ``(sum of (e0 - v) over v < e0, sum of (v - em) over v > em)`` per distribution, which makes
    the tails exact whenever only one side has mass there (always so against the reference the
    edges came from).
    """
    if len(edges) + 1 != len(reference) or len(reference) != len(current) or not edges:
        raise ValueError("wasserstein needs len(edges) + 1 bins per distribution")
    n_ref, n_cur = float(sum(reference)), float(sum(current))
    if n_ref == 0 or n_cur == 0:
        return math.nan
    p, q = shares(reference), shares(current)
    total = abs(reference_tails[0] / n_ref - current_tails[0] / n_cur)
    total += abs(reference_tails[1] / n_ref - current_tails[1] / n_cur)
    cp, cq = p[0], q[0]
    for i in range(1, len(edges)):
        width = edges[i] - edges[i - 1]
        d0 = cp - cq
        cp, cq = cp + p[i], cq + q[i]
        d1 = cp - cq
        if d0 * d1 >= 0:
            total += width * (abs(d0) + abs(d1)) / 2
        else:  # the CDFs cross inside the bin
            total += width * (d0 * d0 + d1 * d1) / (2 * (abs(d0) + abs(d1)))
    return total


def chi_square(observed: Sequence[float], expected_shares: Sequence[float]) -> tuple[float, float]:
    """Pearson's goodness-of-fit: statistic and p-value of ``observed`` against ``expected_shares``."""
    n = float(sum(observed))
    stat = 0.0
    for o, share in zip(observed, expected_shares, strict=True):
        e = n * share
        if e > 0:
            stat += (o - e) ** 2 / e
        elif o > 0:
            return math.inf, 0.0
    dof = len(observed) - 1
    return stat, chi2_sf(stat, dof)


def chi2_sf(x: float, dof: int) -> float:
    """Upper tail of the χ² distribution: the regularized upper incomplete gamma ``Q(dof/2, x/2)``."""
    if dof <= 0:
        return 1.0
    if x <= 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    a, z = dof / 2.0, x / 2.0
    if z < a + 1:
        return max(0.0, 1.0 - _gamma_series(a, z))
    return _gamma_fraction(a, z)


def _gamma_series(a: float, x: float) -> float:
    term = total = 1.0 / a
    ap = a
    for _ in range(10_000):
        ap += 1
        term *= x / ap
        total += term
        if abs(term) < abs(total) * 1e-15:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_fraction(a: float, x: float) -> float:
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def group_bins(reference: Sequence[int], groups: int) -> list[tuple[int, int]]:
    """At most ``groups`` contiguous ranges ``[start, stop)`` of fine bins of ~equal reference mass."""
    total = sum(reference)
    if total == 0 or groups < 2:
        return [(0, len(reference))]
    cuts: list[int] = []
    seen, g = 0, 1
    for i, c in enumerate(reference):
        seen += c
        while g < groups and seen * groups >= g * total:
            if i + 1 < len(reference) and (not cuts or cuts[-1] != i + 1):
                cuts.append(i + 1)
            g += 1
    bounds = [0, *cuts, len(reference)]
    return [(a, b) for a, b in itertools.pairwise(bounds)]
