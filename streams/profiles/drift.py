"""Per-field drift of a current profile against a reference profile.

Every profiled field gets a verdict — ``ok``, ``drift`` or ``insufficient_data`` (fewer than
``min_count`` non-null current values: no verdict, never a false alarm; but with ``min_count`` records, a
flagged null-rate change is ``drift``: a field turned all null) — from one *distribution
method* plus auxiliary checks:

==============  =========================================  ==================================
kind            default method (current non-null count n)  default threshold (drift when ...)
==============  =========================================  ==================================
numeric         n <= 1000: KS test                         p-value < 0.05
numeric         n > 1000: normalised Wasserstein           W1 / reference std >= 0.1
categorical     n <= 1000: χ² goodness of fit              p-value < 0.05
categorical     n > 1000: Jensen–Shannon distance          >= 0.1
any             ``psi`` when configured                    >= 0.1
==============  =========================================  ==================================

Auxiliary checks: null-rate change (absolute) >= 0.05 and beyond 3.29 standard errors; share of values
outside the reference range > 0.01 (numeric); share of values in categories new to the reference > 0.01,
and reference categories of share >= 1% that vanished while at least 5 were expected, totalling >= 0.05
(categorical). Categorical χ², Jensen–Shannon and PSI compare the window with the reference on pooled
bins (categories expected fewer than 5 times in the window grouped into bins expected 5 times,
:func:`pooled_bins`); χ² is the two-sample test (:func:`chi_square_homogeneity`), and a distance flags only
when that χ² is beyond noise too (p < 0.001). The fields of a window judged by a test at the default
p-value are one family: Holm's step-down (the k-th smallest of m p-values, from k = 0, must be below 0.05 / (m - k))
keeps the share of clean windows flagged on *any* of them near 5% (``DriftConfig.family_correction``; a
field with its own threshold is judged alone). Per field, ``qstreams.drift: {method, threshold,
minCount}`` overrides the method and its threshold; ``method: none`` leaves the field unjudged for
distribution drift (its null rate only). Categorical fields whose reference exceeded the category cap
(identifiers) get the null-rate check only. See docs/drift.md (calibration: benchmarks/drift_calibration.py).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from streams.errors import ProfileError
from streams.profiles import metrics as m
from streams.profiles.categories import chi_square_homogeneity, pooled_bins
from streams.profiles.fields import CategoricalProfile, NumericProfile
from streams.profiles.profile import Profile
from streams.profiles.reference import Reference

__all__ = [
    "NOT_JUDGED",
    "OVERRIDE_KEYS",
    "DriftConfig",
    "DriftReport",
    "FieldDrift",
    "Method",
    "MetricResult",
    "Override",
    "Verdict",
    "chi_square_homogeneity",
    "compare",
    "drift_against",
    "parse_override",
    "pooled_bins",
]


class Method(enum.StrEnum):
    PSI = "psi"
    JENSEN_SHANNON = "jensen_shannon"
    WASSERSTEIN = "wasserstein"
    KS = "ks"
    CHI2 = "chi2"


class Verdict(enum.StrEnum):
    OK = "ok"
    DRIFT = "drift"
    INSUFFICIENT_DATA = "insufficient_data"


#: Thresholds by method; KS and χ² are p-values (drift below), the others distances (drift at or above).
DEFAULT_THRESHOLDS: dict[Method, float] = {
    Method.PSI: 0.1,
    Method.JENSEN_SHANNON: 0.1,
    Method.WASSERSTEIN: 0.1,
    Method.KS: 0.05,
    Method.CHI2: 0.05,
}
P_VALUE_METHODS = frozenset({Method.KS, Method.CHI2})
NUMERIC_METHODS = frozenset({Method.PSI, Method.JENSEN_SHANNON, Method.WASSERSTEIN, Method.KS})
CATEGORICAL_METHODS = frozenset({Method.PSI, Method.JENSEN_SHANNON, Method.CHI2})


@dataclass(frozen=True, slots=True)
class DriftConfig:
    """Defaults; per-field overrides come from ``qstreams.drift`` (see :func:`compare`)."""

    min_count: int = 30
    large_sample: int = 1000  # above: distance methods; at or below: statistical tests
    coarse_bins: int = 10  # numeric PSI / Jensen–Shannon on this many ~equal-mass reference bins
    null_rate_change: float = 0.05
    null_rate_z: float = 3.29  # and beyond sampling noise: two-sided p < 0.001 (see _null_rate)
    outside_range_share: float = 0.01
    new_category_share: float = 0.01
    vanished_share: float = 0.05
    #: categorical χ² / JS / PSI: reference categories expected fewer times than this in the window are
    #: grouped, with the new ones, into bins expected this often (Cochran's rule for χ²; :func:`pooled_bins`)
    min_expected: float = 5.0
    #: categorical Jensen–Shannon / PSI flag only when the χ² test of the same bins also says the window is
    #: not a sample of the reference (p below this): with many categories each expected a few times, the
    #: distance of two samples of one distribution exceeds 0.1 on noise alone (docs/drift.md, calibration)
    distance_noise_p: float = 0.001
    #: the fields of one window judged by a test at its default p-value threshold form one family: Holm's
    #: step-down keeps the chance that a clean window flags *any* of them at the threshold (5%), where
    #: judging each field alone flags 16-42% of clean small windows of 6-20 fields (docs/drift.md). Off:
    #: each field is judged alone (a field with its own ``threshold`` always is).
    family_correction: bool = True


@dataclass(frozen=True, slots=True)
class MetricResult:
    metric: str
    value: float
    threshold: float | None
    drifted: bool
    p_value: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"metric": self.metric, "value": _finite(self.value), "threshold": self.threshold}
        out["drifted"] = self.drifted
        if self.p_value is not None:
            out["p_value"] = _finite(self.p_value)
        return out


@dataclass(frozen=True, slots=True)
class FieldDrift:
    field: str
    kind: str
    verdict: Verdict
    method: Method | None
    reference_count: int
    current_count: int
    metrics: tuple[MetricResult, ...] = ()
    new_categories: tuple[str, ...] = ()
    vanished_categories: tuple[str, ...] = ()

    def metric(self, name: str) -> MetricResult:
        for r in self.metrics:
            if r.metric == name:
                return r
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "field": self.field, "kind": self.kind, "verdict": self.verdict.value,
            "method": None if self.method is None else self.method.value,
            "reference_count": self.reference_count, "current_count": self.current_count,
            "metrics": [r.as_dict() for r in self.metrics],
            "new_categories": list(self.new_categories), "vanished_categories": list(self.vanished_categories),
        }  # fmt: skip


@dataclass(frozen=True)
class DriftReport:
    contract: str
    schema: str
    reference_sha256: str
    reference_rows: int
    rows: int
    fields: tuple[FieldDrift, ...] = field(default_factory=tuple)

    @property
    def drifted(self) -> tuple[str, ...]:
        return tuple(f.field for f in self.fields if f.verdict is Verdict.DRIFT)

    def field(self, name: str) -> FieldDrift:
        for f in self.fields:
            if f.field == name:
                return f
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "contract": self.contract, "schema": self.schema, "reference_sha256": self.reference_sha256,
            "reference_rows": self.reference_rows, "rows": self.rows, "fields": [f.as_dict() for f in self.fields],
        }  # fmt: skip


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _judge(method: Method, value: float, threshold: float, p_value: float | None = None) -> MetricResult:
    if method in P_VALUE_METHODS:
        assert p_value is not None
        return MetricResult(method.value, value, threshold, p_value < threshold, p_value)
    return MetricResult(method.value, value, threshold, value >= threshold)


#: What a ``qstreams.drift`` mapping may say; ``method: none`` means the field is not judged for distribution
#: drift (a time-of-day field, say, is not stationary within a window): only its null rate is checked.
OVERRIDE_KEYS = ("method", "threshold", "minCount")
NOT_JUDGED = "none"


@dataclass(frozen=True, slots=True)
class Override:
    method: Method | None = None
    threshold: float | None = None
    min_count: int | None = None
    judged: bool = True  # False for ``method: none``


def parse_override(name: str, raw: Mapping[str, Any], kind: str) -> Override:
    """The ``qstreams.drift`` mapping of field ``name`` (``kind`` numeric or categorical); ValueError saying
    what is wrong otherwise."""
    allowed = NUMERIC_METHODS if kind == "numeric" else CATEGORICAL_METHODS
    choices = [*sorted(x.value for x in allowed), NOT_JUDGED]
    unknown = sorted(str(k) for k in raw if k not in OVERRIDE_KEYS)
    if unknown:
        raise ValueError(
            f"qstreams.drift of {name!r} has unknown key(s) {unknown}; it takes {list(OVERRIDE_KEYS)} "
            f"(method one of {choices})"
        )
    method = raw.get("method")
    threshold, min_count = raw.get("threshold"), raw.get("minCount")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))):
        raise ValueError(f"qstreams.drift.threshold of {name!r} must be a number, not {threshold!r}")
    if min_count is not None and (isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1):
        raise ValueError(f"qstreams.drift.minCount of {name!r} must be a positive integer, not {min_count!r}")
    if method == NOT_JUDGED:
        if threshold is not None:
            raise ValueError(f"qstreams.drift of {name!r} says method: none, so a threshold has nothing to judge")
        return Override(None, None, min_count, judged=False)
    try:
        parsed = None if method is None else Method(method)
    except ValueError:
        raise ValueError(f"qstreams.drift.method of {name!r} is {method!r}; use one of {choices}") from None
    if parsed is not None and parsed not in allowed:
        raise ValueError(f"qstreams.drift.method {parsed.value!r} does not apply to {kind} field {name!r}")
    return Override(parsed, None if threshold is None else float(threshold), min_count)


def compare(
    reference: Profile,
    current: Profile,
    *,
    edges: Mapping[str, tuple[float, ...]],
    reference_sha256: str = "",
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    config: DriftConfig = DriftConfig(),
) -> DriftReport:
    """Drift of every field of ``current`` against ``reference`` (both on the same bins ``edges``)."""
    overrides = overrides or {}
    out: list[FieldDrift] = []
    family: list[int] = []  # fields judged by a test at the default threshold (see DriftConfig.family_correction)
    for name, ref in reference.fields.items():
        cur = current.fields.get(name)
        kind = "numeric" if isinstance(ref, NumericProfile) else "categorical"
        if cur is None or type(cur) is not type(ref):  # was silently left out of the report (or a KeyError)
            found = "not profiled" if cur is None else "profiled as another kind"
            raise ProfileError(
                f"Field {name!r} is {kind} in the reference but {found} in the current profile: profile the current "
                "data with the reference's spec.",
                reason="binning",
            )
        override = parse_override(name, overrides.get(name, {}), kind)
        method, threshold = override.method, override.threshold
        need = override.min_count or config.min_count
        if cur.count < need or ref.count < need:
            # too few values for a distribution, but the null rate needs records: a field that turned (nearly)
            # all null in a large window is drift, not "insufficient data"
            rows = min(cur.count + cur.nulls, ref.count + ref.nulls) >= need
            null_rate = _null_rate(ref, cur, config) if rows else None
            if null_rate is not None and null_rate.drifted:
                out.append(FieldDrift(name, kind, Verdict.DRIFT, None, ref.count, cur.count, (null_rate,)))
            else:
                out.append(FieldDrift(name, kind, Verdict.INSUFFICIENT_DATA, method, ref.count, cur.count))
            continue
        if not override.judged:  # method: none: not judged for distribution drift, the null rate only
            null_rate = _null_rate(ref, cur, config)
            verdict = Verdict.DRIFT if null_rate.drifted else Verdict.OK
            out.append(FieldDrift(name, kind, verdict, None, ref.count, cur.count, (null_rate,)))
            continue
        if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
            out.append(_numeric(name, ref, cur, edges.get(name, ()), method, threshold, config))
        elif isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile):
            out.append(_categorical(name, ref, cur, method, threshold, config))
        if threshold is None and out[-1].method in P_VALUE_METHODS:
            family.append(len(out) - 1)
    if config.family_correction and len(family) > 1:
        _holm(out, family)
    return DriftReport(reference.contract, reference.schema, reference_sha256, reference.rows, current.rows, tuple(out))


def _holm(fields: list[FieldDrift], family: list[int]) -> None:
    """Holm's step-down over the main tests of ``fields[i]`` for ``i`` in ``family`` (all at one threshold α):
    the k-th smallest p-value (from 0) must be below α / (m - k), and once one is not, none after it is.
    Each main metric is re-judged at the threshold it met or missed, which the event reports."""
    order = sorted(family, key=lambda i: (fields[i].metrics[0].p_value or 0.0, i))
    m, rejecting = len(order), True
    for k, i in enumerate(order):
        f = fields[i]
        main = f.metrics[0]
        assert main.p_value is not None and main.threshold is not None
        limit = main.threshold / (m - k)
        rejecting = rejecting and main.p_value < limit
        metrics = (replace(main, threshold=limit, drifted=rejecting), *f.metrics[1:])
        verdict = Verdict.DRIFT if any(r.drifted for r in metrics) else Verdict.OK
        fields[i] = replace(f, metrics=metrics, verdict=verdict)


def _null_rate(
    ref: NumericProfile | CategoricalProfile, cur: NumericProfile | CategoricalProfile, config: DriftConfig
) -> MetricResult:
    """The change of the null share, flagged at ``config.null_rate_change`` or, when that is within sampling
    noise, at ``null_rate_z`` standard errors of the difference of two proportions (a field 60% null moves
    by more than 0.05 in 15% of 200-record windows on noise alone); the threshold reported is the one used."""
    n_ref, n_cur = ref.count + ref.nulls, cur.count + cur.nulls
    ref_rate = ref.nulls / n_ref if n_ref else 0.0
    cur_rate = cur.nulls / n_cur if n_cur else 0.0
    change, limit = cur_rate - ref_rate, config.null_rate_change
    if n_ref and n_cur:
        pooled = (ref.nulls + cur.nulls) / (n_ref + n_cur)
        limit = max(limit, config.null_rate_z * math.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_cur)))
    return MetricResult("null_rate_change", change, limit, abs(change) >= limit)


def _numeric(
    name: str,
    ref: NumericProfile,
    cur: NumericProfile,
    edges: tuple[float, ...],
    method: Method | None,
    threshold: float | None,
    config: DriftConfig,
) -> FieldDrift:
    method = method or (Method.KS if cur.count <= config.large_sample else Method.WASSERSTEIN)
    limit = DEFAULT_THRESHOLDS[method] if threshold is None else threshold
    ks = m.ks_statistic(ref.hist, cur.hist, (ref.below, cur.below))
    ks_p = m.ks_pvalue(ks, ref.count, cur.count)
    assert cur.min is not None and cur.max is not None and ref.min is not None and ref.max is not None
    w = m.wasserstein(edges, ref.hist, cur.hist, (ref.below_gap, ref.above_gap), (cur.below_gap, cur.above_gap))
    w_norm = w / ref.std if ref.std > 0 else (0.0 if w == 0 else math.inf)
    groups = m.group_bins(ref.hist, config.coarse_bins)
    ref_coarse = [sum(ref.hist[a:b]) for a, b in groups]
    cur_coarse = [sum(cur.hist[a:b]) for a, b in groups]
    values = {
        Method.KS: (ks, ks_p),
        Method.WASSERSTEIN: (w_norm, None),
        Method.PSI: (m.psi(ref_coarse, cur_coarse), None),
        Method.JENSEN_SHANNON: (m.js_distance(ref_coarse, cur_coarse), None),
    }
    main = _judge(method, values[method][0], limit, values[method][1])
    others = [MetricResult(k.value, v, None, False, p) for k, (v, p) in values.items() if k is not method]
    outside = (cur.below + cur.above) / cur.count
    aux = [
        _null_rate(ref, cur, config),
        MetricResult("share_outside_range", outside, config.outside_range_share, outside > config.outside_range_share),
    ]
    metrics = (main, *aux, *others)
    verdict = Verdict.DRIFT if any(r.drifted for r in metrics) else Verdict.OK
    return FieldDrift(name, "numeric", verdict, method, ref.count, cur.count, metrics)


def _categorical(
    name: str,
    ref: CategoricalProfile,
    cur: CategoricalProfile,
    method: Method | None,
    threshold: float | None,
    config: DriftConfig,
) -> FieldDrift:
    null_rate = _null_rate(ref, cur, config)
    if ref.truncated:  # an identifier-like field: its value mix is not a distribution worth comparing
        verdict = Verdict.DRIFT if null_rate.drifted else Verdict.OK
        return FieldDrift(name, "categorical", verdict, None, ref.count, cur.count, (null_rate,))
    method = method or (Method.CHI2 if cur.count <= config.large_sample else Method.JENSEN_SHANNON)
    limit = DEFAULT_THRESHOLDS[method] if threshold is None else threshold
    ref_counts, cur_counts = ref.frequencies(), cur.frequencies()
    categories = sorted(ref_counts)
    new = sorted(set(cur_counts) - set(ref_counts))
    new_n = sum(cur_counts[c] for c in new) + cur.other
    ref_vec, cur_vec = pooled_bins(ref_counts, cur_counts, ref.count, cur.count, config.min_expected)
    chi2, chi2_p = chi_square_homogeneity(ref_vec, cur_vec)
    values = {
        Method.CHI2: (chi2, chi2_p),
        Method.JENSEN_SHANNON: (m.js_distance(ref_vec, cur_vec), None),
        Method.PSI: (m.psi(ref_vec, cur_vec), None),
    }
    main = _judge(method, values[method][0], limit, values[method][1])
    if method is not Method.CHI2:  # a distance flags only beyond sampling noise: the χ² of the same bins
        main = MetricResult(main.metric, main.value, limit, main.drifted and chi2_p < config.distance_noise_p, chi2_p)
    others = [MetricResult(k.value, v, None, False, p) for k, (v, p) in values.items() if k is not method]
    new_share = new_n / cur.count
    expected = {c: cur.count * ref_counts[c] / ref.count for c in categories}
    vanished = [
        c for c in categories if cur_counts.get(c, 0) == 0 and ref_counts[c] >= 0.01 * ref.count and expected[c] >= 5
    ]
    vanished_share = sum(ref_counts[c] for c in vanished) / ref.count
    aux = [
        null_rate,
        MetricResult("new_category_share", new_share, config.new_category_share, new_share > config.new_category_share),
        MetricResult(
            "vanished_category_share", vanished_share, config.vanished_share, vanished_share >= config.vanished_share
        ),
    ]
    metrics = (main, *aux, *others)
    verdict = Verdict.DRIFT if any(r.drifted for r in metrics) else Verdict.OK
    return FieldDrift(name, "categorical", verdict, method, ref.count, cur.count, metrics, tuple(new), tuple(vanished))


def drift_against(
    reference: Reference,
    current: Profile,
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    config: DriftConfig = DriftConfig(),
) -> DriftReport:
    """:func:`compare` with the reference's bins and sha256 (``current`` must use ``reference.spec``)."""
    if current.spec_id != reference.spec.binning_id:
        raise ProfileError(
            f"The current profile uses bins {current.spec_id}, not the reference's {reference.spec.binning_id}: "
            "profile it with the reference's spec.",
            reason="binning",
        )
    edges = {f.name: f.edges for f in reference.spec.fields if f.edges}
    return compare(
        reference.profile, current, edges=edges, reference_sha256=reference.sha256, overrides=overrides, config=config
    )
