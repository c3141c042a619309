"""The bins categorical drift methods compare, and the two-sample χ² on them.

Pure functions of count vectors, like :mod:`streams.profiles.metrics` (scipy is the tests' oracle). The
calibration behind them: docs/drift.md and ``benchmarks/drift_calibration.py``.
"""

from __future__ import annotations

from collections.abc import Mapping

from streams.profiles.metrics import chi2_sf

__all__ = ["chi_square_homogeneity", "pooled_bins"]


def pooled_bins(
    reference: Mapping[str, int], current: Mapping[str, int], ref_n: int, cur_n: int, min_expected: float
) -> tuple[list[int], list[int]]:
    """Reference and current counts on the bins the categorical methods compare.

    A reference category is a bin of its own when it is expected at least ``min_expected`` times in the
    current window (``cur_n * share``). The rarer ones are grouped in name order into bins each expected at
    least ``min_expected`` times, so a surge of one rare category still shows in its group (name order, not
    count order: grouping by the reference's counts selects on its sampling noise, and over-flags); values in
    no reference category (new categories, values beyond the cap) join the first group. A last group
    expected fewer than ``min_expected`` times joins the one before, or the least frequent kept bin.

    Without pooling, a field with many rare categories (an IP country) drifts on sampling noise alone: a
    category expected 0.3 times adds a heavy-tailed term to χ², and the Jensen–Shannon distance of two
    samples of one distribution grows as ``sqrt((k - 1) / 8n)`` with the number of bins k. New categories
    stay visible through the ``new_category_share`` check.
    """

    def expected(count: int) -> float:
        return cur_n * count / ref_n if ref_n else 0.0

    kept = sorted(c for c, k in reference.items() if k > 0 and expected(k) >= min_expected)
    rare = sorted(c for c, k in reference.items() if k > 0 and expected(k) < min_expected)  # by name, not count
    ref_vec, cur_vec = [reference[c] for c in kept], [current.get(c, 0) for c in kept]
    groups: list[list[int]] = []  # [reference count, current count] per group of rare categories
    for c in rare:
        if not groups or expected(groups[-1][0]) >= min_expected:
            groups.append([0, 0])
        groups[-1][0] += reference[c]
        groups[-1][1] += current.get(c, 0)
    ref_rest = ref_n - sum(ref_vec) - sum(g[0] for g in groups)
    cur_rest = cur_n - sum(cur_vec) - sum(g[1] for g in groups)
    if groups:
        groups[0][0] += ref_rest
        groups[0][1] += cur_rest
    elif ref_rest or cur_rest:
        groups.append([ref_rest, cur_rest])
    if len(groups) > 1 and expected(groups[-1][0]) < min_expected:
        last = groups.pop()
        groups[-1][0] += last[0]
        groups[-1][1] += last[1]
    if groups and kept and expected(groups[-1][0]) < min_expected:  # one small group: into the least frequent bin
        (ref_extra, cur_extra), j = groups.pop(), min(range(len(kept)), key=lambda i: (ref_vec[i], i))
        ref_vec[j] += ref_extra
        cur_vec[j] += cur_extra
    return ref_vec + [g[0] for g in groups], cur_vec + [g[1] for g in groups]


def chi_square_homogeneity(reference: list[int], current: list[int]) -> tuple[float, float]:
    """Pearson's χ² test that two samples come from one distribution (the 2 × k contingency table, as
    ``scipy.stats.chi2_contingency(correction=False)``): the reference is a sample too, so testing the window
    against its shares as if they were exact would flag more than the nominal share of windows."""
    n_ref, n_cur = sum(reference), sum(current)
    total = n_ref + n_cur
    stat, bins = 0.0, 0
    for r, c in zip(reference, current, strict=True):
        col = r + c
        if col == 0:
            continue
        bins += 1
        for observed, row in ((r, n_ref), (c, n_cur)):
            expected = row * col / total
            stat += (observed - expected) ** 2 / expected
    return stat, chi2_sf(stat, bins - 1)
