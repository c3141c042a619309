"""Drift statistics from binned profiles against scipy on the raw samples, within the documented bin error."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr

from streams.profiles import metrics as m
from streams.profiles.profile import profile_frame
from tests.unit.profiles.drift_data import sample, spec_from

SHIFTS = {
    "none": {},
    "mean": {"mean": 106.0},
    "variance": {"sd": 25.0},
    "both": {"mean": 90.0, "sd": 8.0},
}


@pytest.fixture(scope="module")
def reference():
    ref = sample(20_000, np.random.default_rng(11))
    spec = spec_from(ref)
    return ref, spec, profile_frame(ref, spec)


def _bin_bound(ref_hist, cur_hist) -> float:
    p, q = m.shares(ref_hist), m.shares(cur_hist)
    return max(max(a, b) for a, b in zip(p, q, strict=True))


@pytest.mark.parametrize("shift", sorted(SHIFTS))
def test_ks_and_wasserstein_match_scipy_within_the_bin_error(reference, shift):
    ref, spec, ref_profile = reference
    cur = sample(5_000, np.random.default_rng(12), **SHIFTS[shift])
    cur_profile = profile_frame(cur, spec)
    r, c = ref_profile.numeric("x"), cur_profile.numeric("x")
    exact_ks = stats.ks_2samp(ref["x"].to_numpy(), cur["x"].to_numpy()).statistic
    ks = m.ks_statistic(r.hist, c.hist)
    assert ks <= exact_ks + 1e-12  # sampled at the edges: never above
    assert exact_ks - ks <= _bin_bound(r.hist, c.hist)
    edges = spec.field("x").edges
    w = m.wasserstein(edges, r.hist, c.hist, (r.below_gap, r.above_gap), (c.below_gap, c.above_gap))
    exact_w = stats.wasserstein_distance(ref["x"].to_numpy(), cur["x"].to_numpy())
    widths = np.diff(edges)
    inner = zip(widths, m.shares(r.hist)[1:-1], m.shares(c.hist)[1:-1], strict=True)
    bound = float(sum(wd * max(a, b) for wd, a, b in inner))  # the documented bound: tails are exact
    assert abs(exact_w - w) <= bound
    assert abs(exact_w - w) <= 0.01 * 15.0  # in practice: within 1% of the reference sd


def test_ks_is_exact_on_integer_fields_with_an_edge_per_value(reference):
    ref, spec, ref_profile = reference
    cur = sample(3_000, np.random.default_rng(13))
    cur = cur.with_columns((cur["hour"] % 12).alias("hour"))  # half the hours vanish
    c = profile_frame(cur, spec).numeric("hour")
    exact = stats.ks_2samp(ref["hour"].to_numpy(), cur["hour"].to_numpy()).statistic
    assert m.ks_statistic(ref_profile.numeric("hour").hist, c.hist) == pytest.approx(exact, abs=1e-12)


def test_psi_and_jensen_shannon_match_scipy_on_the_same_bins(reference):
    _, spec, ref_profile = reference
    cur = sample(5_000, np.random.default_rng(14), mean=104.0)
    r, c = ref_profile.numeric("x").hist, profile_frame(cur, spec).numeric("x").hist
    groups = m.group_bins(r, 10)
    assert len(groups) == 10
    rc = np.array([sum(r[a:b]) for a, b in groups], dtype=float)
    cc = np.array([sum(c[a:b]) for a, b in groups], dtype=float)
    p, q = rc / rc.sum(), cc / cc.sum()
    assert p.min() > 0 and q.min() > 0  # no empty bin: PSI floors nothing
    assert m.psi(rc, cc) == pytest.approx(float(np.sum(rel_entr(q, p) + rel_entr(p, q))), rel=1e-12)
    assert m.js_distance(rc, cc) == pytest.approx(float(jensenshannon(rc, cc)), rel=1e-9)
    assert m.js_distance([1, 0], [0, 1]) == pytest.approx(float(jensenshannon([1, 0], [0, 1])))


def test_chi_square_matches_scipy():
    observed = [510, 380, 60, 50]
    shares = [0.55, 0.35, 0.05, 0.05]
    stat, p = m.chi_square(observed, shares)
    want = stats.chisquare(observed, np.array(shares) * sum(observed))
    assert stat == pytest.approx(want.statistic, rel=1e-12)
    assert p == pytest.approx(want.pvalue, rel=1e-9)


@pytest.mark.parametrize(("x", "dof"), [(0.5, 1), (3.84, 1), (11.07, 5), (30.0, 12), (250.0, 200), (1e3, 40)])
def test_chi2_survival_matches_scipy(x, dof):
    assert m.chi2_sf(x, dof) == pytest.approx(stats.chi2.sf(x, dof), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(("d", "n", "k"), [(0.02, 20_000, 5_000), (0.05, 1_000, 500), (0.1, 300, 200), (0.3, 50, 40)])
def test_ks_pvalue_close_to_scipy(d, n, k):
    assert m.ks_pvalue(d, n, k) == pytest.approx(stats.kstwo.sf(d, round(n * k / (n + k))), abs=0.01)


@pytest.mark.parametrize(("n", "k", "overall", "near_threshold"),
                         [(30, 30, 0.021, 0.001), (30, 20_000, 0.019, 0.0015), (100, 20_000, 0.015, 0.0025),
                          (200, 500, 0.011, 0.001), (1_000, 20_000, 0.0045, 0.0002),
                          # half-integer effective sizes, which scipy rounds up: the largest errors (red team 7)
                          (31, 31, 0.038, 0.0102), (59, 59, 0.027, 0.006), (203, 203, 0.015, 0.0025)])  # fmt: skip
def test_ks_pvalue_error_against_scipy_is_within_the_documented_bound(n, k, overall, near_threshold):
    # docs/drift.md: Stephens' asymptotic p-value against scipy's kstwo.sf at the effective size, over a grid of
    # statistics; where decisions are made (p < 0.1) the error is an order of magnitude smaller
    en = round(n * k / (n + k))
    grid = np.linspace(0.001, 0.8, 800)
    ref = stats.kstwo.sf(grid, en)
    ours = np.array([m.ks_pvalue(float(d), n, k) for d in grid])
    assert np.abs(ours - ref).max() <= overall
    assert np.abs(ours - ref)[ref < 0.1].max() <= near_threshold
