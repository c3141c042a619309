"""Drift statistics on binned distributions: PSI, Jensen–Shannon, Wasserstein, KS, χ².

Pure functions of count vectors (no numpy, no scipy at run time: scipy is the tests' oracle).
Every function takes the reference first and the current distribution second.

Numeric histograms use the right-closed bins of :mod:`streams.profiles.spec`, so the empirical
CDFs are exact at every edge. From bins:

* the KS statistic is the largest CDF gap *at the edges*; the exact two-sample statistic is at
  most ``max over bins of max(p_i, q_i)`` larger (the mass a gap can grow by inside one bin);
* the Wasserstein-1 distance is exact from the per-bin counts and sums except inside bins where
  the two CDFs cross, where it can be at most ``width_i * max(p_i, q_i)`` too small.
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

PSI_EPSILON = 1e-4  # Evidently's floor for an empty bin


def shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    return [c / total for c in counts] if total > 0 else [0.0] * len(counts)


def psi(reference: Sequence[float], current: Sequence[float], eps: float = PSI_EPSILON) -> float:
    """Population stability index: ``sum (q - p) ln(q / p)``, empty bins floored at ``eps``."""
    p = [max(x, eps) for x in shares(reference)]
    q = [max(x, eps) for x in shares(current)]
    return sum((qi - pi) * math.log(qi / pi) for pi, qi in zip(p, q, strict=True))


def js_distance(reference: Sequence[float], current: Sequence[float]) -> float:
    """Jensen–Shannon distance, natural log (as ``scipy.spatial.distance.jensenshannon``): in [0, sqrt(ln 2)]."""
    p, q = shares(reference), shares(current)
    div = 0.0
    for pi, qi in zip(p, q, strict=True):
        m = (pi + qi) / 2
        if pi > 0:
            div += pi * math.log(pi / m) / 2
        if qi > 0:
            div += qi * math.log(qi / m) / 2
    return math.sqrt(max(div, 0.0))


def ks_statistic(reference: Sequence[float], current: Sequence[float]) -> float:
    """Largest gap between the two cumulative distributions at the bin edges."""
    p, q = shares(reference), shares(current)
    gap = cp = cq = 0.0
    for pi, qi in zip(p, q, strict=True):
        cp, cq = cp + pi, cq + qi
        gap = max(gap, abs(cp - cq))
    return gap


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    """Asymptotic two-sample KS p-value (Kolmogorov distribution, Stephens' small-sample correction)."""
    if n <= 0 or m <= 0:
        return 1.0
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
    reference_sums: Sequence[float],
    current: Sequence[float],
    current_sums: Sequence[float],
) -> float:
    """W1 between two histograms on the right-closed bins of ``edges``, with the sum of values per bin.

    ``∫ F`` over a bin ``(a, b]`` is exact from its count and sum: ``F(a) (b - a) + (count b - sum) / n``;
    so each bin contributes ``|∫ (F - G)|``, which is ``∫ |F - G|`` exactly unless the CDFs cross inside
    it (then at most ``width * max(p_i, q_i)`` less). The tails beyond the edges are exact likewise.
    """
    if len(edges) + 1 != len(reference) or not edges:
        raise ValueError("wasserstein needs len(edges) + 1 bins per distribution")
    if not len(reference) == len(current) == len(reference_sums) == len(current_sums):
        raise ValueError("wasserstein needs counts and sums for the same bins")
    n_ref, n_cur = float(sum(reference)), float(sum(current))
    if n_ref == 0 or n_cur == 0:
        return math.nan
    e0, em = edges[0], edges[-1]
    total = abs((reference[0] * e0 - reference_sums[0]) / n_ref - (current[0] * e0 - current_sums[0]) / n_cur)
    total += abs((reference_sums[-1] - reference[-1] * em) / n_ref - (current_sums[-1] - current[-1] * em) / n_cur)
    cp, cq = reference[0] / n_ref, current[0] / n_cur
    for i in range(1, len(edges)):
        a, b = edges[i - 1], edges[i]
        inside_p = cp * (b - a) + (reference[i] * b - reference_sums[i]) / n_ref
        inside_q = cq * (b - a) + (current[i] * b - current_sums[i]) / n_cur
        total += abs(inside_p - inside_q)
        cp, cq = cp + reference[i] / n_ref, cq + current[i] / n_cur
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
