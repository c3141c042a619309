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
    current window (``cur_n * share``); the rarer ones, the categories new to the reference (and values
    beyond the cap) share one ``other`` bin, itself merged into the least frequent kept bin when it is
    expected fewer than ``min_expected`` times. Without pooling, a field with many rare categories (an IP
    country) drifts on sampling noise alone: each category expected 0.3 times adds ~1 to χ² per degree of
    freedom with a heavy tail, and the Jensen–Shannon distance of two samples of one distribution grows as
    ``sqrt((k - 1) / 8n)`` with the number of bins k (0.11 for 150 categories at n = 1,500).
    New categories stay visible through the ``new_category_share`` check.
    """
    kept = sorted(c for c, k in reference.items() if k > 0 and cur_n * k >= min_expected * ref_n)
    ref_vec = [reference[c] for c in kept]
    cur_vec = [current.get(c, 0) for c in kept]
    ref_rest, cur_rest = ref_n - sum(ref_vec), cur_n - sum(cur_vec)
    if ref_rest == 0 and cur_rest == 0:
        return ref_vec, cur_vec
    if kept and cur_n * ref_rest < min_expected * ref_n:
        j = min(range(len(kept)), key=lambda i: (ref_vec[i], i))
        ref_vec[j] += ref_rest
        cur_vec[j] += cur_rest
        return ref_vec, cur_vec
    return [*ref_vec, ref_rest], [*cur_vec, cur_rest]


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
