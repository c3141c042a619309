"""Prediction monitoring: per-``model_version`` score profiles, CBPE-style expected accuracy.

A :class:`ModelProfile` is a mergeable partial for the predictions of one model version: the
score histogram on equal-width bins over [0, 1], the predicted-label mix, the confidence
``max(s, 1 - s)`` and the sums behind confidence-based performance estimation (CBPE): for a
calibrated binary classifier a positive prediction is right with probability ``s`` and a negative
one with probability ``1 - s``, so the expected accuracy is
``(sum of s over positive predictions + sum of (1 - s) over negative ones) / n``.
Counts merge exactly, and so do the sums of scores and confidences: integers in units of 2⁻⁶⁰
(:func:`score_units`), so a window's confidence figures are the same whatever the order its partials merge in.
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from streams.profiles.spec import PredictionSpec

__all__ = [
    "ModelDrift",
    "ModelDriftConfig",
    "ModelProfile",
    "boolean_positive",
    "compare_models",
    "label_positive",
    "label_positive_expr",
    "merge_models",
    "profile_models",
    "score_bin",
    "score_bin_expr",
]

#: Key used when the contract names no model-version field.
NO_VERSION = ""

#: Sums of scores count each score in [0, 1] in units of 2**-60: ``floor(s * 2**60)`` is ``s`` itself for every
#: score >= 2**-8 (53 significant bits) and short of it by less than 2**-60 below; integers add exactly in any
#: order (float sums do not). The confidence ``max(s, 1 - s)`` is ``max(u, 2**60 - u)`` on the same grid.
SCORE_UNIT_BITS = 60
SCORE_UNIT = 1 << SCORE_UNIT_BITS
HALF_BITS = SCORE_UNIT_BITS // 2


def score_units(score: float) -> int:
    """A score in [0, 1] in units of 2**-60 (see :data:`SCORE_UNIT_BITS`)."""
    return math.floor(score * SCORE_UNIT)


def read_units(value: Any) -> int:
    """A score sum read back: an integer (or its decimal text), or a float sum written before sums were exact."""
    if isinstance(value, float):
        return math.floor(value * SCORE_UNIT)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"a score sum must be an integer, not {value!r}")
    return int(value)


def units_halves(score: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """``score_units(score)`` as two Float64 integers ``(high, low)`` with ``high * 2**30 + low`` exact: summed as
    int64 they cannot overflow below 2**33 rows."""
    high = (score * float(1 << HALF_BITS)).floor()
    return high, (score * float(SCORE_UNIT)).floor() - high * float(1 << HALF_BITS)


@functools.lru_cache(maxsize=8)
def _inner_edges(bins: int) -> tuple[float, ...]:
    return tuple(k / bins for k in range(1, bins))  # int / int: the float nearest k / bins


def score_bin_expr(score: pl.Expr, bins: int) -> pl.Expr:
    """Bin index of a score on ``bins`` equal-width bins ``[k / bins, (k + 1) / bins)`` over [0, 1], the edges the
    floats nearest ``k / bins``; 1.0 falls in the last bin. (``floor(score * bins)`` is off by one where the product
    rounds across an integer: 0.29 * 100 = 28.999999999999996; and polars divides a column by a scalar through its
    reciprocal, so the edges are searched, not recomputed per row.)"""
    edges = pl.lit(pl.Series(_inner_edges(bins), dtype=pl.Float64))
    return edges.search_sorted(score, side="right").cast(pl.Int64)


def score_bin(score: float, bins: int) -> int:
    """:func:`score_bin_expr` for one score in [0, 1] (the labels join's per-record path)."""
    return bisect.bisect_right(_inner_edges(bins), score)


@dataclass(frozen=True, slots=True)
class ModelProfile:
    count: int  # predictions with a score in [0, 1]
    invalid: int  # predictions whose score is null, NaN or outside [0, 1]
    hist: tuple[int, ...]
    labels: tuple[tuple[str, int], ...]  # predicted label -> count, sorted
    sum_score: int  # sums in units of 2**-60 (SCORE_UNIT): exact, order-free
    sum_confidence: int
    low_confidence: int  # confidence below the spec's threshold
    positives: int  # positive predictions
    sum_score_positive: int  # sum of s over positive predictions (expected true positives)
    sum_score_negative: int  # sum of s over negative predictions (expected false negatives)

    @property
    def mean_score(self) -> float:
        return self.sum_score / (self.count * SCORE_UNIT) if self.count else float("nan")

    @property
    def mean_confidence(self) -> float:
        return self.sum_confidence / (self.count * SCORE_UNIT) if self.count else float("nan")

    @property
    def low_confidence_share(self) -> float:
        return self.low_confidence / self.count if self.count else float("nan")

    @property
    def expected_accuracy(self) -> float:
        """CBPE expected accuracy, assuming calibrated scores."""
        if not self.count:
            return float("nan")
        negatives = self.count - self.positives
        right = self.sum_score_positive + negatives * SCORE_UNIT - self.sum_score_negative
        return right / (self.count * SCORE_UNIT)

    @property
    def expected_precision(self) -> float:
        return self.sum_score_positive / (self.positives * SCORE_UNIT) if self.positives else float("nan")

    @property
    def expected_recall(self) -> float:
        total = self.sum_score_positive + self.sum_score_negative
        return self.sum_score_positive / total if total else float("nan")

    def label_mix(self) -> dict[str, float]:
        total = sum(n for _, n in self.labels)
        return {label: n / total for label, n in self.labels} if total else {}

    def merge(self, other: ModelProfile) -> ModelProfile:
        if len(self.hist) != len(other.hist):
            raise ValueError("model profiles with different score bins cannot merge")
        labels = dict(self.labels)
        for label, n in other.labels:
            labels[label] = labels.get(label, 0) + n
        return ModelProfile(
            self.count + other.count, self.invalid + other.invalid,
            tuple(a + b for a, b in zip(self.hist, other.hist, strict=True)), tuple(sorted(labels.items())),
            self.sum_score + other.sum_score, self.sum_confidence + other.sum_confidence,
            self.low_confidence + other.low_confidence, self.positives + other.positives,
            self.sum_score_positive + other.sum_score_positive, self.sum_score_negative + other.sum_score_negative,
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count, "invalid": self.invalid, "hist": list(self.hist),
            "labels": [v for v, _ in self.labels], "label_counts": [n for _, n in self.labels],
            "sum_score": str(self.sum_score), "sum_confidence": str(self.sum_confidence),  # text: past 64 bits
            "low_confidence": self.low_confidence, "positives": self.positives,
            "sum_score_positive": str(self.sum_score_positive), "sum_score_negative": str(self.sum_score_negative),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelProfile:
        labels = tuple(zip([str(v) for v in d["labels"]], [int(n) for n in d["label_counts"]], strict=True))
        return cls(
            int(d["count"]), int(d["invalid"]), tuple(int(x) for x in d["hist"]), labels,
            read_units(d["sum_score"]), read_units(d["sum_confidence"]), int(d["low_confidence"]), int(d["positives"]),
            read_units(d["sum_score_positive"]), read_units(d["sum_score_negative"]),
        )  # fmt: skip


def merge_models(a: Mapping[str, ModelProfile], b: Mapping[str, ModelProfile]) -> dict[str, ModelProfile]:
    out = dict(a)
    for version, profile in b.items():
        out[version] = out[version].merge(profile) if version in out else profile
    return dict(sorted(out.items()))


def boolean_positive(positive_label: str) -> bool | None:
    """The value a Boolean predicted label is positive at: ``positiveLabel`` written YAML ``true``/``false`` (read
    ``True``/``False``) or as polars' text ``"true"``/``"false"``; None for any other label (no Boolean is)."""
    return _BOOLEAN_LABELS.get(positive_label)


_BOOLEAN_LABELS = {"True": True, "true": True, "False": False, "false": False}

#: a decimal number as YAML and JSON write it (``1``, ``-2``, ``1.0``, ``.5``, ``1e3``): not ``nan``, ``inf``, ``1_0``
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def numeric_positive(positive_label: str) -> int | float | None:
    """The number ``positiveLabel`` names when its text is one (YAML ``1`` or ``1.0``, read ``"1"`` / ``"1.0"``, or
    quoted ``"1"``), as an int when integral (so ``1`` and ``1.0`` name the same class); None for any other label."""
    if _NUMBER.fullmatch(positive_label) is None:
        return None
    value = float(positive_label)
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() else value


def label_positive(value: Any, positive_label: str) -> bool | None:
    """Whether one label (predicted or actual, a decoded JSON value) is ``positiveLabel``; None when it is no label
    (null, NaN, an object or an array). The one mapping the labels join, the confidence profiles and the batch
    partials (:func:`label_positive_expr`) share: a Boolean is positive at :func:`boolean_positive`; a number equals
    ``positiveLabel`` as a number (:func:`numeric_positive`: ``1.0`` is ``1``, as scikit-learn's ``1.0 == 1``); a
    text equals it as written (``"1"`` is ``positiveLabel: 1``, ``"1.0"`` is not, ``"True"`` is not ``"true"``)."""
    if isinstance(value, bool):
        return value is boolean_positive(positive_label)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return None
        return value == numeric_positive(positive_label)
    if isinstance(value, str):
        return value == positive_label
    return None


def label_positive_expr(label: pl.Expr, dtype: pl.DataType | None, positive_label: str) -> pl.Expr:
    """:func:`label_positive` over a column of ``dtype`` (null where a label is null or NaN)."""
    if dtype == pl.Boolean:
        want = boolean_positive(positive_label)
        if want is None:
            return pl.when(label.is_null()).then(None).otherwise(pl.lit(False))
        return label if want else ~label
    if dtype is not None and dtype.is_numeric():
        number = numeric_positive(positive_label)
        present = label.is_not_null() & label.cast(pl.Float64).is_not_nan()
        return pl.when(present).then(pl.lit(False) if number is None else label == number)
    return label.cast(pl.String) == positive_label


def positive_expr(spec: PredictionSpec, schema: pl.Schema | None = None) -> pl.Expr:
    """True for a positive prediction: the positive label when named, else score >= decision threshold.

    The label column (of its dtype in ``schema``, the frame's) is read by :func:`label_positive_expr`, as the
    performance join reads a JSON label (``streams.performance.binding.records``)."""
    if spec.positive_label is not None and spec.label is not None:
        dtype = schema.get(spec.label) if schema is not None else None
        return label_positive_expr(pl.col(spec.label), dtype, spec.positive_label)
    return pl.col(spec.score).cast(pl.Float64, strict=False) >= spec.decision_threshold


def profile_models(frame: pl.DataFrame, spec: PredictionSpec) -> dict[str, ModelProfile]:
    """One :class:`ModelProfile` per model version present in ``frame`` (one group-by, vectorised)."""
    if frame.height == 0:
        return {}
    score = pl.col(spec.score).cast(pl.Float64, strict=False).fill_nan(None)
    valid = score.is_between(0.0, 1.0)
    version = pl.col(spec.model_version).cast(pl.String).fill_null("") if spec.model_version else pl.lit(NO_VERSION)
    label = pl.col(spec.label).cast(pl.String).fill_null("") if spec.label else pl.lit("")
    conf = pl.max_horizontal(score, 1.0 - score)
    positive = positive_expr(spec, frame.schema).fill_null(False)
    high, low = units_halves(score)
    upper = score >= 0.5  # max(u, 2**60 - u) is u exactly when s >= 1/2
    c_high = pl.when(upper).then(high).otherwise(float(1 << HALF_BITS) - high)
    c_low = pl.when(upper).then(low).otherwise(-low)
    base = frame.select(
        version.alias("v"), score.alias("s"), valid.fill_null(False).alias("ok"), label.alias("l"),
        conf.alias("c"), positive.alias("p"), score_bin_expr(score, spec.score_bins).alias("b"),
        high.alias("sh"), low.alias("sl"), c_high.alias("ch"), c_low.alias("cl"),
    )  # fmt: skip

    def total(column: str, where: pl.Expr) -> pl.Expr:
        return pl.col(column).filter(where).cast(pl.Int64).sum()

    ok, pos = pl.col("ok"), pl.col("ok") & pl.col("p")
    neg = pl.col("ok") & ~pl.col("p")
    stats = base.group_by("v").agg(
        ok.sum().alias("count"), (~ok).sum().alias("invalid"),
        total("sh", ok).alias("s_h"), total("sl", ok).alias("s_l"),
        total("ch", ok).alias("c_h"), total("cl", ok).alias("c_l"),
        (ok & (pl.col("c") < spec.confidence_threshold)).sum().alias("low_confidence"),
        pos.sum().alias("positives"),
        total("sh", pos).alias("p_h"), total("sl", pos).alias("p_l"),
        total("sh", neg).alias("n_h"), total("sl", neg).alias("n_l"),
    )  # fmt: skip
    ok_rows = base.filter(ok)
    bins = ok_rows.group_by("v", "b").len()
    labels = ok_rows.filter(pl.col("l") != "").group_by("v", "l").len() if spec.label else None
    out: dict[str, ModelProfile] = {}
    for row in stats.iter_rows(named=True):
        v = row["v"]
        hist = [0] * spec.score_bins
        for b, n in bins.filter(pl.col("v") == v).select("b", "len").iter_rows():
            hist[b] += n
        mix: tuple[tuple[str, int], ...] = ()
        if labels is not None:
            mix = tuple(sorted(labels.filter(pl.col("v") == v).select("l", "len").iter_rows()))

        def units(prefix: str, row: dict[str, Any] = row) -> int:
            return (int(row[f"{prefix}_h"] or 0) << HALF_BITS) + int(row[f"{prefix}_l"] or 0)

        out[v] = ModelProfile(
            int(row["count"]), int(row["invalid"]), tuple(hist), mix, units("s"), units("c"),
            int(row["low_confidence"]), int(row["positives"]), units("p"), units("n"),
        )  # fmt: skip
    return dict(sorted(out.items()))


@dataclass(frozen=True, slots=True)
class ModelDrift:
    """One model version's predictions against the reference's."""

    model_version: str
    verdict: str  # ok | drift | insufficient_data
    new_version: bool  # not in the reference: compared with the reference's most frequent version
    baseline_version: str | None
    count: int
    metrics: tuple[tuple[str, float, float | None, bool], ...]  # (metric, value, threshold, drifted)
    mean_confidence: float
    low_confidence_share: float
    expected_accuracy: float
    label_mix: tuple[tuple[str, float], ...]

    def metric(self, name: str) -> tuple[float, float | None, bool]:
        for metric, value, threshold, drifted in self.metrics:
            if metric == name:
                return value, threshold, drifted
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version, "verdict": self.verdict, "new_version": self.new_version,
            "baseline_version": self.baseline_version, "count": self.count,
            "metrics": [{"metric": n, "value": v, "threshold": t, "drifted": d} for n, v, t, d in self.metrics],
            "mean_confidence": self.mean_confidence, "low_confidence_share": self.low_confidence_share,
            "expected_accuracy": self.expected_accuracy, "label_mix": dict(self.label_mix),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class ModelDriftConfig:
    min_count: int = 30
    large_sample: int = 1000
    score_distance: float = 0.1  # Jensen–Shannon distance of score histograms (n > large_sample) ...
    #: ... on this many contiguous groups of the score bins, of ~equal reference mass (as numeric fields): on the
    #: 100 fine bins two samples of one distribution are ~sqrt(99/8 (1/n + 1/m)) apart, 0.11 at n = 1,001
    score_groups: int = 10
    score_p_value: float = 0.05  # KS test of score histograms (n <= large_sample)
    confidence_drop: float = 0.05  # mean confidence lower than the reference's by at least this
    low_confidence_rise: float = 0.10  # share below the confidence threshold higher by at least this
    label_mix_distance: float = 0.1  # Jensen–Shannon distance of predicted-label mixes


def compare_models(
    reference: Mapping[str, ModelProfile],
    current: Mapping[str, ModelProfile],
    config: ModelDriftConfig = ModelDriftConfig(),
) -> tuple[ModelDrift, ...]:
    """Each current model version against the same version in the reference (or its dominant one)."""
    from streams.profiles import metrics as m

    dominant = max(reference, key=lambda v: reference[v].count) if reference else None
    out: list[ModelDrift] = []
    for version, cur in current.items():
        new = version not in reference
        base_version = dominant if new else version
        base = reference.get(base_version) if base_version is not None else None
        summary = (cur.mean_confidence, cur.low_confidence_share, cur.expected_accuracy)
        mix = tuple(sorted(cur.label_mix().items()))
        if base is None or cur.count < config.min_count or base.count < config.min_count:
            out.append(ModelDrift(version, "insufficient_data", new, base_version, cur.count, (), *summary, mix))
            continue
        rows: list[tuple[str, float, float | None, bool]] = []
        if cur.count > config.large_sample:
            groups = m.group_bins(base.hist, config.score_groups)
            js = m.js_distance([sum(base.hist[a:b]) for a, b in groups], [sum(cur.hist[a:b]) for a, b in groups])
            rows.append(("score_jensen_shannon", js, config.score_distance, js >= config.score_distance))
        else:
            ks = m.ks_statistic(base.hist, cur.hist)
            p = m.ks_pvalue(ks, base.count, cur.count)
            rows.append(("score_ks_p_value", p, config.score_p_value, p < config.score_p_value))
        drop = base.mean_confidence - cur.mean_confidence
        rows.append(("mean_confidence_drop", drop, config.confidence_drop, drop >= config.confidence_drop))
        rise = cur.low_confidence_share - base.low_confidence_share
        rows.append(("low_confidence_rise", rise, config.low_confidence_rise, rise >= config.low_confidence_rise))
        labels = sorted(set(dict(base.labels)) | set(dict(cur.labels)))
        if labels:
            b, c = dict(base.labels), dict(cur.labels)
            js = m.js_distance([b.get(x, 0) for x in labels], [c.get(x, 0) for x in labels])
            rows.append(("label_mix_jensen_shannon", js, config.label_mix_distance, js >= config.label_mix_distance))
        verdict = "drift" if any(r[3] for r in rows) else "ok"
        out.append(ModelDrift(version, verdict, new, base_version, cur.count, tuple(rows), *summary, mix))
    return tuple(out)
