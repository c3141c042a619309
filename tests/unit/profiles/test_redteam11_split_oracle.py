"""Red team 11: a window's drift report does not depend on how its records were split into partials or merged,
and its KS / Wasserstein / JS / PSI agree with scipy on the raw values (within the documented bin error).

Random windows (0 to 3,000 rows; shifted, rescaled, constant, beyond the reference range; integer fields moved out of
their range), split into 1-6 partials through the serialized form, merged in a random tree order with empty profiles
mixed in, against the one-pass profile of the window. (Held in 400 + 300 such cases during red team 11.)"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

from streams.profiles import metrics as m
from streams.profiles.codec import decode_profile, encode_profile
from streams.profiles.drift import DriftReport, compare
from streams.profiles.profile import Profile, empty_profile, profile_frame
from streams.profiles.spec import ProfileSpec
from tests.unit.profiles.drift_data import sample, spec_from


def _window(n: int, rng: np.random.Generator, ref: pl.DataFrame) -> pl.DataFrame:
    cur = sample(
        n, rng, mean=100 + rng.normal(0, 40), sd=15 * rng.choice([1e-9, 0.1, 1, 3]), null_rate=rng.uniform(0, 0.3)
    )
    if n and rng.random() < 0.5:
        shift, scale = int(rng.integers(-30, 30)), float(rng.choice([0.001, 1, 50]))
        cur = cur.with_columns((pl.col("hour") + shift).cast(pl.Int32), pl.col("amount") * scale)
    if n and rng.random() < 0.2:
        cur = cur.with_columns(pl.lit(float(rng.choice([ref["x"].min(), ref["x"].max(), 100.0]))).alias("x"))
    return cur


def _split_merged(cur: pl.DataFrame, spec: ProfileSpec, rng: np.random.Generator) -> Profile:
    n, k = cur.height, int(rng.integers(1, 7))
    perm = rng.permutation(n)
    cuts = sorted(int(c) for c in rng.integers(0, n + 1, k - 1))
    parts = [
        decode_profile(encode_profile(profile_frame(cur[perm[a:b]], spec)))
        for a, b in zip([0, *cuts], [*cuts, n], strict=True)
    ]
    parts += [empty_profile(spec)] * int(rng.integers(0, 2))
    while len(parts) > 1:
        i, j = (int(x) for x in rng.choice(len(parts), 2, replace=False))
        merged = parts[i].merge(parts[j])
        parts = [p for t, p in enumerate(parts) if t not in (i, j)] + [merged]
    return parts[0]


def _summary(report: DriftReport) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for f in report.fields:
        out.append((f.field, f.verdict, f.method, f.new_categories, f.vanished_categories))
        for r in f.metrics:  # values to 1e-12: the Wasserstein tail gaps are float sums (docs/drift.md)
            value = r.value if math.isnan(r.value) or math.isinf(r.value) else round(r.value, 12)
            out.append(
                (f.field, r.metric, r.drifted, r.threshold, None if r.p_value is None else round(r.p_value, 12), value)
            )
    return out


def test_random_splits_give_the_one_pass_report_and_the_metrics_agree_with_scipy() -> None:
    rng = np.random.default_rng(12)
    ref_df = sample(20_000, rng)
    spec = spec_from(ref_df)
    ref = profile_frame(ref_df, spec)
    edges = {f.name: f.edges for f in spec.fields if f.edges}
    differing, off_bound, judged = [], [], 0
    for case in range(60):
        n = int(rng.choice([0, 1, 2, 29, 30, 31, 500, 1001, 3000]))
        cur = _window(n, rng, ref_df)
        one = profile_frame(cur, spec)
        whole = compare(ref, one, edges=edges)
        if _summary(whole) != _summary(compare(ref, _split_merged(cur, spec, rng), edges=edges)):
            differing.append(case)
        for name in ("x", "amount", "hour"):
            f = whole.field(name)
            if not any(r.metric == "ks" for r in f.metrics):
                continue
            judged += 1
            rv = ref_df[name].cast(pl.Float64).fill_nan(None).drop_nulls().to_numpy()
            cv = cur[name].cast(pl.Float64).fill_nan(None).drop_nulls().to_numpy()
            rp, cp = ref.numeric(name), one.numeric(name)
            mass = [max(a / rp.count, b / cp.count) for a, b in zip(rp.hist, cp.hist, strict=True)]
            ks = stats.ks_2samp(rv, cv).statistic
            sd = float(np.std(rv, ddof=1))
            e = edges[name]
            w_bound = sum((e[i] - e[i - 1]) * mass[i] for i in range(1, len(e))) / sd
            w = stats.wasserstein_distance(rv, cv) / sd
            groups = m.group_bins(rp.hist, 10)
            p = np.array([sum(rp.hist[a:b]) for a, b in groups], float)
            q = np.array([sum(cp.hist[a:b]) for a, b in groups], float)
            p, q = p / p.sum(), q / q.sum()
            checks = [
                f.metric("ks").value <= ks + 1e-12,
                ks - f.metric("ks").value <= max(mass) + 1e-12,
                abs(w - f.metric("wasserstein").value) <= w_bound + 1e-9,
                abs(jensenshannon(p, q) - f.metric("jensen_shannon").value) <= 1e-9,
            ]
            if (p > 0).all() and (q > 0).all():  # no floor involved: PSI is the symmetric KL exactly
                psi = float((special.rel_entr(q, p) + special.rel_entr(p, q)).sum())
                checks.append(abs(psi - f.metric("psi").value) <= 1e-9)
            if not all(checks):
                off_bound.append((case, name, checks))
    assert judged >= 60  # the oracle comparisons ran
    assert differing == []
    assert off_bound == []
