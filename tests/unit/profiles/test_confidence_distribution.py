"""The ``confidence_distribution`` of a ``prediction.confidence`` event: quantiles of the score and of the confidence
``max(s, 1 - s)`` read from the window's score histogram (within one bin width of ``np.quantile``), the exact fold
of the score histogram at 1/2, the compact confidence histogram, nulls for a version without a valid score,
bit-identical results from merged partials, and the event against its JSON Schema."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import numpy as np
import polars as pl
import pytest

from streams.contracts.loader import load_contract
from streams.events.codec import event_data, validate_event
from streams.events.drift import prediction_confidence
from streams.profiles.confidence import (
    QUANTILES,
    compact_histogram,
    confidence_distribution,
    fold_confidence,
    histogram_quantiles,
)
from streams.profiles.evidence import confidence_data
from streams.profiles.prediction import ModelProfile, compare_models, merge_models, profile_models
from streams.profiles.spec import PredictionSpec
from streams.windows.finalize import finalize
from streams.windows.partial import merge
from tests.unit.windows.test_window_confidence import partial, setup

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "streams" / "events" / "schemas" / "prediction_confidence.json").read_text())
CONTRACT = load_contract(ROOT / "contracts" / "fraud_predictions.odcs.yaml")
WINDOW = (datetime(2025, 3, 1, 12, 0, tzinfo=UTC), datetime(2025, 3, 1, 12, 1, tzinfo=UTC))
KEYS = ("p05", "p10", "p25", "p50", "p75", "p90", "p95")
SPEC = PredictionSpec(score="score", label="predicted_label", model_version="model_version", positive_label="fraud")


def spec(bins: int) -> PredictionSpec:
    return replace(SPEC, score_bins=bins)


def frame(scores: list[float | None] | np.ndarray, version: str = "1") -> pl.DataFrame:
    s = pl.Series("score", scores, dtype=pl.Float64)
    label = pl.when(pl.col("score") >= 0.5).then(pl.lit("fraud")).otherwise(pl.lit("legit"))
    return pl.DataFrame([s]).with_columns(label.alias("predicted_label"), pl.lit(version).alias("model_version"))


def profile(scores: list[float | None] | np.ndarray, bins: int) -> ModelProfile:
    return profile_models(frame(scores), spec(bins))["1"]


def samples() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(20250301)
    out: list[tuple[str, np.ndarray]] = []
    for n in (1, 2, 3, 17, 200, 5_000):
        out += [
            (f"beta(1.2, 12) n={n}", rng.beta(1.2, 12.0, n)),
            (f"beta(5, 5) n={n}", rng.beta(5.0, 5.0, n)),
            (f"beta(0.4, 0.4) n={n}", rng.beta(0.4, 0.4, n)),
            (f"uniform n={n}", rng.uniform(0.0, 1.0, n)),
            (f"near 0.5 n={n}", rng.uniform(0.45, 0.55, n)),
            (f"beta(2, 2) n={n}", rng.beta(2.0, 2.0, n)),
            (f"0.1 / 0.9 clusters n={n}", np.clip(rng.normal(0.1, 0.02, n) + 0.8 * (rng.random(n) < 0.3), 0, 1)),
        ]
    for point in (0.0, 0.3, 0.5, 0.55, 1.0):
        out.append((f"point mass {point}", np.full(64, point)))
    out.append(("0, 0.5 and 1", np.repeat([0.0, 0.5, 1.0], [5, 7, 3])))
    out.append(("on the 0.01 grid", rng.integers(0, 101, 500) / 100))
    return out


CASES = samples()


def errors(scores: np.ndarray, bins: int) -> tuple[float, float]:
    """Largest |estimate - np.quantile| over QUANTILES, for the score and for the confidence."""
    dist = confidence_distribution(profile(scores, bins).hist)
    conf = np.maximum(scores, 1.0 - scores)
    got_s = np.array([dist["score_quantiles"][k] for k in KEYS], dtype=float)
    got_c = np.array([dist["confidence_quantiles"][k] for k in KEYS], dtype=float)
    return (
        float(np.max(np.abs(got_s - np.quantile(scores, QUANTILES)))),
        float(np.max(np.abs(got_c - np.quantile(conf, QUANTILES)))),
    )


@pytest.mark.parametrize("bins", [10, 20, 100, 25])
def test_quantiles_are_within_one_bin_width_of_numpy(bins: int) -> None:
    worst = {name: errors(scores, bins) for name, scores in CASES}
    assert len(worst) == len(CASES) == 49
    score_error = max(s for s, _ in worst.values())
    confidence_error = max(c for _, c in worst.values())
    width = 1.0 / bins
    assert score_error <= width and confidence_error <= width, (bins, worst)
    # an estimate within the bin but not interpolated inside it (a bin edge, say) errs by about half a bin on a
    # smooth sample: on 5,000 uniform scores the estimate is much closer than that
    smooth = errors(dict(CASES)["uniform n=5000"], bins)
    assert max(smooth) < 0.1 * width, smooth


def test_quantiles_of_two_scores_interpolate_as_numpy() -> None:
    # 0.0 and 1.0 on 10 bins: one score in the first bin and one in the last, estimated at their bins' middles
    dist = confidence_distribution(profile([0.0, 1.0], 10).hist)
    assert [dist["score_quantiles"][k] for k in KEYS] == pytest.approx([0.05 + q * 0.9 for q in QUANTILES])
    # both confidences are 1.0, in the last confidence bin [0.9, 1]: at its quarter and three quarters
    assert [dist["confidence_quantiles"][k] for k in KEYS] == pytest.approx([0.925 + q * 0.05 for q in QUANTILES])
    assert dist["confidence_histogram"] == {"edges": pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9, 1.0]),
                                            "counts": [0, 0, 0, 0, 2]}  # fmt: skip


def test_one_score_gives_every_quantile_its_bin_middle() -> None:
    dist = confidence_distribution(profile([0.3], 100).hist)
    assert list(dist["score_quantiles"].values()) == pytest.approx([0.305] * 7)
    assert list(dist["confidence_quantiles"].values()) == pytest.approx([0.695] * 7)  # 0.7 is in (0.69, 0.70]


def test_no_valid_score_gives_null_quantiles_never_zero() -> None:
    none = profile([None, float("nan"), 1.5, -0.1], 100)
    assert (none.count, none.invalid) == (0, 4)
    dist = confidence_distribution(none.hist)
    assert list(dist["score_quantiles"].values()) == [None] * 7
    assert list(dist["confidence_quantiles"].values()) == [None] * 7
    assert dist["confidence_histogram"]["counts"] == [0] * 10
    (result,) = compare_models({}, {"1": none})
    data = confidence_data(
        result, CONTRACT, "card_fraud_predictions", "t", WINDOW, reference_sha256="0" * 64, reference_rows=0,
        confidence_threshold=0.6, profile=none,
    )  # fmt: skip
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    assert data["confidence_distribution"]["score_quantiles"]["p50"] is None
    assert json.loads(json.dumps(data))["confidence_distribution"]["confidence_quantiles"]["p05"] is None


@pytest.mark.parametrize(
    ("bins", "scores", "counts"),
    [
        # 0.5 is a bin edge for an even number of bins: 0.45..0.5 and 0.5..0.55 both fold into [0.5, 0.6]
        (10, [0.5, 0.45, 0.55, 0.4999999999], [4, 0, 0, 0, 0]),
        # a score on a lower edge folds to the upper edge of its mirror bin: 0.4 -> 0.6 in [0.5, 0.6], 0.1 -> 0.9
        # in [0.8, 0.9]; 0 and 1 -> 1 in the last bin
        (10, [0.4, 0.6, 0.0, 1.0, 0.1], [1, 1, 0, 1, 2]),
        # 20 bins: 0.45 -> 0.55 closes [0.5, 0.55]
        (20, [0.45, 0.55, 0.5, 0.0], [2, 1, 0, 0, 0, 0, 0, 0, 0, 1]),
        # 25 bins (odd): the middle score bin [0.48, 0.52) straddles 0.5 and folds onto [0.5, 0.52]; 0.47 -> 0.53
        (25, [0.48, 0.49, 0.5, 0.51, 0.5199, 0.52, 0.47], [5, 2] + [0] * 11),
    ],
)
def test_fold_at_one_half_is_exact(bins: int, scores: list[float], counts: list[int]) -> None:
    edges, folded = fold_confidence(profile(scores, bins).hist)
    assert list(folded) == counts
    assert len(edges) == len(folded) + 1 and edges[0] == 0.5 and edges[-1] == 1.0
    conf = np.maximum(np.array(scores), 1.0 - np.array(scores))
    # every confidence lies in the closed folded bin its score went to
    where = [fold_confidence(profile([s], bins).hist)[1].index(1) for s in scores]
    assert all(edges[i] <= c <= edges[i + 1] for i, c in zip(where, conf, strict=True)), (where, conf)
    if bins % 2:
        assert edges[1] - edges[0] == pytest.approx(0.5 / bins)  # the straddling bin's half


@pytest.mark.parametrize("bins", [10, 20, 25, 100])
def test_compact_histogram_counts_confidences_in_its_bins(bins: int) -> None:
    scores = np.random.default_rng(bins).beta(0.7, 0.9, 4_000)  # continuous: no confidence on an edge
    hist = confidence_distribution(profile(scores, bins).hist)["confidence_histogram"]
    expected, _ = np.histogram(np.maximum(scores, 1.0 - scores), bins=np.array(hist["edges"]))
    assert hist["counts"] == expected.tolist() and sum(hist["counts"]) == 4_000
    assert hist["edges"][0] == 0.5 and hist["edges"][-1] == 1.0 and 5 <= len(hist["counts"]) <= 10
    if bins % 20 == 0:
        assert hist["edges"] == pytest.approx([0.5 + 0.05 * i for i in range(11)])


def test_compact_histogram_groups_whole_bins() -> None:
    edges = tuple(range(14))
    assert compact_histogram(edges, (1,) * 13) == ((0, 2, 4, 6, 8, 10, 12, 13), (2, 2, 2, 2, 2, 2, 1))
    assert compact_histogram(tuple(range(16)), (1,) * 15) == ((0, 3, 6, 9, 12, 15), (3, 3, 3, 3, 3))
    with pytest.raises(ValueError, match="edges"):
        histogram_quantiles((0.0, 1.0), (1, 1))


def test_merged_partials_give_bit_identical_distributions() -> None:
    rng = np.random.default_rng(7)
    versions = np.where(rng.random(6_000) < 0.7, "a", "b")
    scores = np.where(versions == "a", rng.beta(2.0, 5.0, 6_000), rng.uniform(0.3, 0.7, 6_000))
    df = pl.DataFrame({"score": scores, "model_version": versions}).with_columns(
        pl.when(pl.col("score") >= 0.5).then(pl.lit("fraud")).otherwise(pl.lit("legit")).alias("predicted_label")
    )
    whole = profile_models(df, SPEC)
    cuts = [0, *sorted(rng.choice(np.arange(1, 6_000), 7, replace=False).tolist()), 6_000]
    parts = [profile_models(df[a:b], SPEC) for a, b in itertools.pairwise(cuts)]
    one_pass = {v: confidence_distribution(p.hist) for v, p in whole.items()}
    assert sorted(one_pass) == ["a", "b"]
    for order in (parts, parts[::-1], [parts[i] for i in rng.permutation(len(parts))]):
        merged: dict[str, ModelProfile] = {}
        for part in order:  # through the serialized form, as the state and merge topics carry it
            merged = merge_models(merged, {v: ModelProfile.from_dict(p.as_dict()) for v, p in part.items()})
        assert {v: confidence_distribution(p.hist) for v, p in merged.items()} == one_pass


def test_event_carries_the_window_distribution_and_validates(tmp_path: Path) -> None:
    contract, monitor, plan, reference = setup(tmp_path)
    frame_ = reference.sample(900, seed=4)
    merged = merge(partial(contract, plan, frame_[:333], monitor, 0), partial(contract, plan, frame_[333:], monitor, 1))
    events = prediction_confidence(contract, finalize(plan, merged, monitor))  # type: ignore[arg-type]
    assert len(events) == 1
    validate_event(events[0])
    data = event_data(events[0])
    [(version, one_pass)] = monitor.profile(frame_).models.items()
    assert data["model_version"] == version
    assert data["confidence_distribution"] == confidence_distribution(one_pass.hist)
    assert sum(data["confidence_distribution"]["confidence_histogram"]["counts"]) == data["count"] == 900
    scores = frame_["score"].to_numpy()
    conf_median = float(np.quantile(np.maximum(scores, 1 - scores), 0.5))
    assert abs(data["confidence_distribution"]["confidence_quantiles"]["p50"] - conf_median) <= 0.01


def test_schema_keeps_older_events_valid_and_checks_the_distribution() -> None:
    rng = np.random.default_rng(11)
    current = profile(rng.beta(2.0, 2.0, 300), 100)
    (result,) = compare_models({"1": profile(rng.beta(2.0, 2.0, 300), 100)}, {"1": current})
    data = confidence_data(
        result, CONTRACT, "card_fraud_predictions", "t", WINDOW, reference_sha256="0" * 64, reference_rows=300,
        confidence_threshold=0.6, profile=current,
    )  # fmt: skip
    validator = jsonschema.Draft202012Validator(SCHEMA)
    validator.validate(data)
    older = {k: v for k, v in data.items() if k != "confidence_distribution"}
    validator.validate(older)  # an event of an older worker
    assert "confidence_distribution" not in SCHEMA["required"]
    broken = json.loads(json.dumps(data))
    broken["confidence_distribution"]["confidence_quantiles"]["p50"] = 0.2  # a confidence is at least 0.5
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)
    mismatched = confidence_data(
        result, CONTRACT, "s", "t", WINDOW, reference_sha256="0" * 64, reference_rows=300,
        confidence_threshold=0.6, profile=profile([0.5], 100),
    )  # fmt: skip
    assert "confidence_distribution" not in mismatched  # another window's profile: left out, never a crash
    assert mismatched["count"] == data["count"]
