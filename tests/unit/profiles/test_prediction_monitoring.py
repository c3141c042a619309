"""Prediction monitoring: per-model score profiles, CBPE expected accuracy, realized performance partials."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from streams.profiles.performance import merge_performance, performance_partials
from streams.profiles.prediction import compare_models, merge_models, profile_models
from streams.profiles.spec import PredictionSpec

SPEC = PredictionSpec(score="score", label="predicted_label", model_version="model_version", positive_label="fraud")


def predictions(n: int, rng: np.random.Generator, version: str = "3.2.1", a: float = 1.2, b: float = 12.0):
    """Calibrated scores: the actual label is drawn with probability = score."""
    score = rng.beta(a, b, n)
    actual = rng.random(n) < score
    return pl.DataFrame(
        {
            "score": score,
            "predicted_label": np.where(score >= 0.5, "fraud", "legit"),
            "model_version": [version] * n,
            "actual": actual,
            "delay": rng.exponential(3600.0, n),
        }
    )


def test_model_profiles_per_version_and_merge_of_split():
    rng = np.random.default_rng(1)
    df = pl.concat([predictions(3_000, rng), predictions(1_000, rng, "3.3.0", a=5, b=5)]).sample(
        fraction=1.0, shuffle=True, seed=2
    )
    whole = profile_models(df, SPEC)
    assert sorted(whole) == ["3.2.1", "3.3.0"]
    merged = merge_models(profile_models(df[:1234], SPEC), profile_models(df[1234:], SPEC))
    for v in whole:
        w, m = whole[v], merged[v]
        assert (m.count, m.hist, m.labels, m.low_confidence, m.positives) == (
            w.count, w.hist, w.labels, w.low_confidence, w.positives,
        )  # fmt: skip
        assert (m.sum_score, m.sum_confidence) == (w.sum_score, w.sum_confidence)  # exact sums: any split
    old = df.filter(pl.col("model_version") == "3.2.1")
    s = old["score"].to_numpy()
    p = whole["3.2.1"]
    assert p.mean_confidence == pytest.approx(float(np.maximum(s, 1 - s).mean()), rel=1e-12)
    assert p.low_confidence_share == pytest.approx(float((np.maximum(s, 1 - s) < 0.6).mean()), abs=1e-12)
    assert p.label_mix()["fraud"] == pytest.approx(float((s >= 0.5).mean()), abs=1e-12)
    assert sum(p.hist) == p.count == old.height


def test_cbpe_expected_accuracy_tracks_realized_accuracy_for_calibrated_scores():
    rng = np.random.default_rng(3)
    for a, b in ((1.2, 12.0), (2.0, 2.0), (5.0, 3.0)):
        df = predictions(20_000, rng, a=a, b=b)
        expected = profile_models(df, SPEC)["3.2.1"]
        realized = performance_partials(df, SPEC, "actual")["3.2.1"]
        # the expectation of the realized accuracy given the scores; the sd of the realized is <= 0.5/sqrt(n)
        assert abs(expected.expected_accuracy - realized.accuracy) <= 4 * 0.5 / np.sqrt(20_000)
        assert abs(expected.expected_precision - realized.precision) <= 4 * 0.5 / np.sqrt(expected.positives)


def test_confidence_collapse_of_a_new_model_version_is_detected():
    rng = np.random.default_rng(4)
    reference = profile_models(predictions(20_000, rng), SPEC)
    same = compare_models(reference, profile_models(predictions(5_000, rng), SPEC))
    assert [(d.model_version, d.verdict, d.new_version) for d in same] == [("3.2.1", "ok", False)]
    collapsed = predictions(5_000, rng, "3.3.0", a=8.0, b=9.0)  # scores huddle around 0.5
    (result,) = compare_models(reference, profile_models(collapsed, SPEC))
    assert (result.model_version, result.new_version, result.baseline_version) == ("3.3.0", True, "3.2.1")
    assert result.verdict == "drift"
    for metric in ("score_jensen_shannon", "mean_confidence_drop", "low_confidence_rise"):
        assert result.metric(metric)[2], metric
    few = compare_models(reference, profile_models(collapsed[:10], SPEC))
    assert few[0].verdict == "insufficient_data"


def test_realized_performance_is_exact_and_mergeable():
    rng = np.random.default_rng(5)
    df = predictions(8_000, rng, a=2.0, b=3.0)
    whole = performance_partials(df, SPEC, "actual", delay_seconds="delay")["3.2.1"]
    merged = merge_performance(
        performance_partials(df[:3000], SPEC, "actual", delay_seconds="delay"),
        performance_partials(df[3000:], SPEC, "actual", delay_seconds="delay"),
    )["3.2.1"]
    assert (merged.tp, merged.fp, merged.tn, merged.fn) == (whole.tp, whole.fp, whole.tn, whole.fn)
    assert merged.positives_hist == whole.positives_hist and merged.delay_max == whole.delay_max
    y = df["actual"].to_numpy()
    s = df["score"].to_numpy()
    pred = s >= 0.5
    assert whole.accuracy == float((pred == y).mean())
    assert whole.precision == float(y[pred].mean())
    assert whole.recall == float(pred[y].mean())
    u = stats.mannwhitneyu(s[y], s[~y]).statistic / (y.sum() * (~y).sum())
    assert abs(whole.roc_auc - u) <= whole.roc_auc_error_bound
    assert abs(whole.roc_auc - u) <= 0.002
    edges = np.linspace(0, 1, 11)
    idx = np.clip(np.digitize(s, edges) - 1, 0, 9)
    ece = sum(abs(s[idx == b].sum() - y[idx == b].sum()) for b in range(10)) / len(s)
    assert whole.calibration_error(10) == pytest.approx(ece, rel=1e-9)
    assert whole.mean_label_delay == pytest.approx(float(df["delay"].mean()), rel=1e-9)
    with pytest.raises(ValueError, match="must divide"):
        whole.calibration_error(7)


def test_string_actual_labels_need_the_positive_label():
    df = predictions(100, np.random.default_rng(6)).with_columns(
        pl.when(pl.col("actual")).then(pl.lit("fraud")).otherwise(pl.lit("legit")).alias("actual_label")
    )
    a = performance_partials(df, SPEC, "actual")["3.2.1"]
    b = performance_partials(df, SPEC, "actual_label")["3.2.1"]
    assert (a.tp, a.fp, a.tn, a.fn) == (b.tp, b.fp, b.tn, b.fn)
    with pytest.raises(ValueError, match="positiveLabel"):
        performance_partials(df, PredictionSpec(score="score"), "actual_label")


def test_prediction_spec_parsing_rejects_bad_values():
    spec = PredictionSpec.from_dict({"score": "s", "label": "l", "modelVersion": "v", "confidenceThreshold": 0.7})
    assert (spec.score, spec.label, spec.model_version, spec.confidence_threshold) == ("s", "l", "v", 0.7)
    for bad, match in (
        ({"label": "l"}, "naming at least the score"),
        ({"score": "s", "thresh": 1}, "unknown keys"),
        ({"score": "s", "decisionThreshold": 1.5}, "strictly between 0 and 1"),
        ({"score": "s", "label": 3}, "must be a field name"),
    ):
        with pytest.raises(ValueError, match=match):
            PredictionSpec.from_dict(bad)
