"""Prediction contracts on windows: per model version, the window's merged score profile gives one
``prediction.confidence`` event (deterministic id per window and version) and the confidence gauges; a confidence
collapse of a new version is a ``warning``; gauges keep a bounded number of model versions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from prometheus_client import CollectorRegistry

from streams.contracts.loader import load_contract
from streams.events.codec import event_data, validate_event
from streams.events.drift import prediction_confidence, window_drift_events
from streams.profiles.monitor import DriftMonitor
from streams.profiles.reference import build_reference, save_reference
from streams.testing import generate_prediction_records
from streams.windows.drift_metrics import MAX_MODEL_VERSIONS, DriftMetrics
from streams.windows.finalize import finalize
from streams.windows.partial import WindowKey, WindowPartial, merge
from streams.windows.plan import WindowPlan
from tests.unit.profiles.test_profile_reference import _prediction_contract


def setup(tmp_path: Path) -> tuple[object, DriftMonitor, WindowPlan, pl.DataFrame]:
    path = _prediction_contract(tmp_path)
    contract = load_contract(path)
    data = tmp_path / "preds.ndjson"
    reference = pl.DataFrame(generate_prediction_records(3_000, seed=3).records)
    reference.write_ndjson(data)
    (tmp_path / "refs").mkdir()
    save_reference(build_reference(contract, None, [data]), tmp_path / "refs" / "predictions.qsref")
    monitor = DriftMonitor.from_contract(contract)
    assert monitor is not None and monitor.spec.prediction is not None
    so = contract.schema()
    return contract, monitor, WindowPlan.of(contract, so, so.stream), reference


def partial(contract: object, plan: WindowPlan, frame: pl.DataFrame, monitor: DriftMonitor, p: int) -> WindowPartial:
    so = plan.schema_obj
    key = WindowKey(plan.contract.id, plan.contract.version, so.name, so.topic, 60_000, 120_000)
    n = frame.height
    return WindowPartial(key, plan.contract.sha256, records=n, rows=n, valid=n, offsets={p: ((0, n - 1),)},
                         profile=monitor.profile(frame))  # fmt: skip


def test_confidence_per_model_version_from_merged_window_profiles(tmp_path: Path) -> None:
    contract, monitor, plan, reference = setup(tmp_path)
    [base] = sorted(monitor.reference.profile.models)
    rng = np.random.default_rng(5)
    same = reference.sample(900, seed=1)
    collapsed = same.head(300).with_columns(
        pl.lit("9.9.9").alias("model_version"), pl.Series("score", rng.uniform(0.4, 0.6, 300))
    )
    frame = pl.concat([same, collapsed], how="vertical_relaxed")
    cut = 500
    merged = merge(partial(contract, plan, frame[:cut], monitor, 0), partial(contract, plan, frame[cut:], monitor, 1))
    verdict = finalize(plan, merged, monitor)
    assert verdict.drift is not None
    one_pass = monitor.models(monitor.profile(frame))
    assert len(verdict.drift.models) == len(one_pass) == 2  # merged window profile == one pass, per model version
    for got, want in zip(verdict.drift.models, one_pass, strict=True):
        assert (got.model_version, got.verdict, got.new_version, got.count) == (
            want.model_version, want.verdict, want.new_version, want.count,
        )  # fmt: skip
        assert abs(got.mean_confidence - want.mean_confidence) < 1e-12 and got.label_mix == want.label_mix
        assert [m[3] for m in got.metrics] == [m[3] for m in want.metrics]  # the same metrics drifted
    events = prediction_confidence(contract, verdict)  # type: ignore[arg-type]
    assert [event_data(e)["model_version"] for e in events] == sorted([base, "9.9.9"])
    for e in events:
        validate_event(e)
    by_version = {event_data(e)["model_version"]: e for e in events}
    new = event_data(by_version["9.9.9"])
    assert new["new_version"] is True and new["verdict"] == "drift" and new["count"] == 300
    assert by_version["9.9.9"].get_extension("severity") == "warning"
    assert event_data(by_version[base])["count"] == 900
    assert len({e.get_id() for e in events}) == 2
    again = prediction_confidence(contract, finalize(plan, merged, monitor))  # type: ignore[arg-type]
    assert [e.get_id() for e in again] == [e.get_id() for e in events]
    kinds = [e.get_type() for e in window_drift_events(contract, verdict)]  # type: ignore[arg-type]
    assert kinds[0] == "io.qualitystreams.distribution.drift.v1" and kinds.count(
        "io.qualitystreams.prediction.confidence.v1"
    ) == 2  # fmt: skip
    registry = CollectorRegistry()
    gauges = DriftMetrics(registry)
    gauges.observe(verdict)
    low = registry.get_sample_value(
        "qstreams_prediction_confidence", {"contract": contract.id, "schema": plan.schema_obj.name,  # type: ignore[attr-defined]
                                           "model_version": "9.9.9"},
    )  # fmt: skip
    assert low is not None and abs(low - new["mean_confidence"]) < 1e-12


def test_confidence_gauges_keep_a_bounded_number_of_model_versions(tmp_path: Path) -> None:
    contract, monitor, plan, reference = setup(tmp_path)
    registry = CollectorRegistry()
    gauges = DriftMetrics(registry)
    versions = [f"v{i}" for i in range(MAX_MODEL_VERSIONS + 4)]
    for v in versions:
        frame = reference.head(40).with_columns(pl.lit(v).alias("model_version"))
        gauges.observe(finalize(plan, partial(contract, plan, frame, monitor, 0), monitor))
    text = "\n".join(
        s.labels["model_version"] for m in registry.collect() if m.name == "qstreams_prediction_confidence"
        for s in m.samples
    )  # fmt: skip
    kept = set(text.split())
    assert kept == set(versions[-MAX_MODEL_VERSIONS:])
