"""The demo, headless and bounded, against the real broker: every scheduled incident is detected."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from streams.consumers.tracker import EventTracker
from streams.demo.producers import ProducerStats
from streams.demo.scenario import BASELINE_MODEL_VERSION, COLLAPSE_METRICS, KINDS, NEW_MODEL_VERSION, default_schedule
from streams.demo.view import evaluate, summary
from streams.events.types import EventType

ROOT = Path(__file__).resolve().parents[2]


def test_schedule_has_one_incident_of_each_kind_inside_the_run() -> None:
    for duration in (30.0, 90.0, 600.0):
        incidents = default_schedule(duration)
        assert {i.kind for i in incidents} == set(KINDS)
        assert all(i.start_s > 0 and i.end_s < duration for i in incidents)
        ends = [i.end_s for i in incidents]
        starts = [i.start_s for i in incidents]
        assert all(e < s for e, s in zip(ends, starts[1:], strict=False)), "incidents must not overlap"


def test_detectors_need_the_right_evidence() -> None:
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    window = {"start": t0.isoformat(), "end": (t0 + dt.timedelta(seconds=1)).isoformat()}
    contract = {"id": "urn:x", "version": "1"}
    incidents = default_schedule(60)
    stats = ProducerStats()
    for i in range(len(incidents)):
        stats.injected[i] = 10
        stats.windows[i] = (t0, t0 + dt.timedelta(seconds=2))
    tracker = EventTracker()
    assert not any(r.detection.detected for r in evaluate(incidents, tracker, stats))
    # a warning-severity violation is not evidence of the error burst; drift of only one kind is not enough
    tracker.add(
        EventType.RULE_VIOLATION,
        "a",
        {"contract": contract, "window": window, "rule": {"name": "w", "severity": "warning"}, "failures": 3},
    )
    tracker.add(
        EventType.SCHEMA_DRIFT, "b", {"contract": contract, "window": window, "unknown_fields": {"merchant_geohash": 4}}
    )
    # amounts drifting alone are not the covariate incident's evidence (violations and the retyping touch amounts)
    drift = {"contract": contract, "window": window, "records": 500}
    tracker.add(EventType.DISTRIBUTION_DRIFT, "f", drift | {"fields": [{"field": "amount", "verdict": "drift"}]})
    tracker.add(
        EventType.DISTRIBUTION_DRIFT, "g", drift | {"fields": [{"field": "merchant_category_code", "verdict": "ok"}]}
    )
    assert not any(r.detection.detected for r in evaluate(incidents, tracker, stats))
    # confidence: a new version merely appearing, the old version's scores drifting, or the new version's label
    # mix alone are not the collapse
    conf = {"contract": contract, "window": window, "count": 800, "baseline_version": "3.2.1"}
    collapse = [{"metric": m, "value": 0.4, "threshold": 0.1, "drifted": True} for m in COLLAPSE_METRICS]
    label_mix = [{"metric": "label_mix_jensen_shannon", "value": 0.5, "threshold": 0.1, "drifted": True}]
    tracker.add(
        EventType.PREDICTION_CONFIDENCE,
        "i",
        conf | {"model_version": NEW_MODEL_VERSION, "new_version": True, "verdict": "ok", "metrics": []},
    )
    tracker.add(
        EventType.PREDICTION_CONFIDENCE,
        "j",
        conf | {"model_version": "3.2.1", "new_version": False, "verdict": "drift", "metrics": collapse},
    )
    tracker.add(
        EventType.PREDICTION_CONFIDENCE,
        "k",
        conf | {"model_version": NEW_MODEL_VERSION, "new_version": True, "verdict": "drift", "metrics": label_mix},
    )
    kinds = [s.kind for s in tracker.signals]
    assert kinds[-4:] == ["model_version", "confidence", "model_version", "confidence"]
    assert tracker.confidence_through == t0 + dt.timedelta(seconds=1)
    assert not any(r.detection.detected for r in evaluate(incidents, tracker, stats))
    tracker.add(
        EventType.PREDICTION_CONFIDENCE,
        "l",
        conf
        | {
            "model_version": NEW_MODEL_VERSION,
            "new_version": True,
            "verdict": "drift",
            "metrics": collapse,
            "mean_confidence": 0.53,
            "low_confidence_share": 0.99,
        },
    )
    assert tracker.confidence_windows == {NEW_MODEL_VERSION: 3, "3.2.1": 1}
    assert tracker.confidence_alarms == {NEW_MODEL_VERSION: 2, "3.2.1": 1}
    tracker.add(
        EventType.DISTRIBUTION_DRIFT,
        "h",
        drift
        | {
            "fields": [{"field": "amount", "verdict": "drift"}, {"field": "merchant_category_code", "verdict": "drift"}]
        },
    )
    tracker.add(
        EventType.RULE_VIOLATION,
        "c",
        {
            "contract": contract,
            "window": window,
            "rule": {"name": "amount:exclusiveMinimum", "severity": "error"},
            "failures": 3,
        },
    )
    tracker.add(EventType.SCHEMA_DRIFT, "d", {"contract": contract, "window": window, "type_mismatches": {"amount": 4}})
    tracker.add(
        EventType.BATCH_SUMMARY,
        "e",
        {"contract": contract, "window": window, "counts": {"valid": 5, "quarantined": 0, "dead_lettered": 2}},
    )
    tracker.add(
        EventType.BATCH_SUMMARY,
        "e",
        {"contract": contract, "window": window, "counts": {"valid": 5, "quarantined": 0, "dead_lettered": 2}},
    )
    assert tracker.duplicates == 1 and tracker.totals()["dead_lettered"] == 2
    results = {r.incident.kind: r.detection for r in evaluate(incidents, tracker, stats)}
    assert all(d.detected for d in results.values()), results
    assert "mean confidence 0.53, 99% below threshold" in results["confidence_collapse"].evidence
    assert "realized accuracy" not in results["confidence_collapse"].evidence  # no label joined yet
    # once labels are joined the collapse's evidence cites the new version's realized accuracy (and the baseline's);
    # a window of another version or outside the incident is not its evidence
    later = {"start": (t0 + dt.timedelta(seconds=60)).isoformat(), "end": (t0 + dt.timedelta(seconds=70)).isoformat()}
    perf = {"contract": contract, "window": window, "unmatched_predictions": 10, "orphan_labels": 0}
    for eid, version, where, confusion in (
        ("m1", NEW_MODEL_VERSION, window, {"tp": 30, "fp": 300, "tn": 290, "fn": 20}),
        ("m2", BASELINE_MODEL_VERSION, window, {"tp": 10, "fp": 5, "tn": 900, "fn": 85}),
        ("m3", NEW_MODEL_VERSION, later, {"tp": 100, "fp": 0, "tn": 900, "fn": 0}),
    ):
        data = perf | {
            "model_version": version,
            "window": where,
            "confusion": confusion,
            "count": sum(confusion.values()),
        }
        tracker.add(EventType.MODEL_PERFORMANCE, eid, data)
    cited = {r.incident.kind: r.detection for r in evaluate(incidents, tracker, stats)}["confidence_collapse"]
    assert cited.detected and cited.first_seen == results["confidence_collapse"].first_seen
    assert cited.evidence.endswith("; realized accuracy 50% on 640 labelled predictions (model 3.2.1: 91%)")
    from rich.console import Console

    console = Console(record=True, width=200)
    summary(evaluate(incidents, tracker, stats), tracker, console)
    text = console.export_text()
    assert (
        "realized performance, model 3.2.1: 1 window(s) judged, accuracy 91.0% of 1,000 labelled, 10 unmatched" in text
    )
    assert (
        "realized performance, model 3.3.0: 2 window(s) judged, accuracy 80.5% of 1,640 labelled, 20 unmatched" in text
    )


def test_confidence_collapse_is_valid_for_the_contract_and_judged_against_the_demo_reference(tmp_path: Path) -> None:
    """The demo's predictions reference (built as the demo builds it) judges clean windows of the old version
    ``ok`` and a window of the collapsed new version as a confidence drift; the mutated records break no rule."""
    import random

    import polars as pl

    from streams.contracts.loader import load_contract
    from streams.demo.references import PREDICTIONS_CONTRACT, with_references
    from streams.profiles.monitor import DriftMonitor
    from streams.testing import generate_prediction_records

    contracts = with_references(ROOT / "contracts", tmp_path)
    contract = load_contract(contracts / PREDICTIONS_CONTRACT)
    monitor = DriftMonitor.from_contract(contract)
    assert monitor is not None and set(monitor.reference.profile.models) == {"3.2.1"}
    mutate = KINDS["confidence_collapse"].mutate
    assert mutate is not None
    rng = random.Random(5)
    false_alarms = []
    for seed, n in [(s, n) for s in range(6) for n in (500, 2_000)]:  # window sizes of the demo's (partial) windows
        clean = pl.DataFrame(generate_prediction_records(n, seed=1_000 + seed).records)
        (old,) = monitor.models(monitor.profile(clean))
        assert old.model_version == "3.2.1" and not old.new_version
        if old.verdict != "ok":
            false_alarms.append((seed, n, old.metrics))
    assert not false_alarms, false_alarms
    collapsed = pl.DataFrame([mutate(r, rng) for r in generate_prediction_records(800, seed=77).records])
    report = contract.validate(collapsed)
    assert report.passed and bool(report.valid_mask.all()), report.failure_cases
    (new,) = monitor.models(monitor.profile(collapsed))
    assert (new.model_version, new.new_version, new.verdict) == (NEW_MODEL_VERSION, True, "drift")
    assert all(new.metric(m)[2] for m in COLLAPSE_METRICS), new.metrics
    assert new.mean_confidence < 0.6 and new.low_confidence_share > 0.9


@pytest.mark.kafka
def test_headless_demo_detects_every_scheduled_incident(kafka_broker) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers}
    proc = subprocess.run(
        [sys.executable, "-m", "streams.cli.main", "demo", "--duration", "30", "--headless", "--rate", "150"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    lines = re.findall(r"^incident (\w+): (DETECTED|MISSED)", out, flags=re.MULTILINE)
    assert dict(lines) == dict.fromkeys(KINDS, "DETECTED"), out[-4000:]
    assert proc.returncode == 0, out[-4000:]
    assert "Summary" in out
    # realized performance from the labels: the calibrated model ~91% right, the collapsed new version ~50%
    found = re.findall(r"^realized performance, model ([\d.]+): (\d+) window\(s\) judged, accuracy ([\d.]+)% of "
                       r"([\d,]+) labelled, ([\d,]+) unmatched", out, flags=re.MULTILINE)  # fmt: skip
    accuracy = {version: float(acc) for version, _, acc, _, _ in found}
    assert set(accuracy) == {BASELINE_MODEL_VERSION, NEW_MODEL_VERSION}, out[-4000:]
    assert accuracy[BASELINE_MODEL_VERSION] > 85 and accuracy[NEW_MODEL_VERSION] < 65, found
    cited = out[out.index("incident confidence_collapse: DETECTED") :]
    cited = " ".join(cited[: cited.find("\nincident ")].split())  # its plain line, unwrapped
    assert re.search(r"; realized accuracy \d+% on [\d,]+ labelled predictions \(model 3\.2\.1: \d+%\)$", cited), cited


def test_the_summary_counts_clean_windows_that_raised_drift() -> None:
    from streams.demo.view import DriftWindows

    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    stats = ProducerStats()
    stats.windows[0] = (t0 + dt.timedelta(seconds=12), t0 + dt.timedelta(seconds=18))  # one incident, 12-18 s
    drift = DriftWindows()

    def event(start_s: int, *drifted: str) -> dict[str, object]:
        start, end = t0 + dt.timedelta(seconds=start_s), t0 + dt.timedelta(seconds=start_s + 10)
        fields = [{"field": f, "verdict": "drift"} for f in drifted] + [{"field": "amount", "verdict": "ok"}]
        window = {"start": start.isoformat(), "end": end.isoformat()}
        return {"contract": {"id": "urn:x"}, "schema": "s", "window": window, "fields": fields, "records": 250}

    drift.add(EventType.DISTRIBUTION_DRIFT, event(0, "ip_country"))  # clean traffic, drifted
    drift.add(EventType.DISTRIBUTION_DRIFT, event(10, "merchant_category_code"))  # overlaps the incident
    drift.add(EventType.DISTRIBUTION_DRIFT, event(20))  # clean, no drift
    drift.add(EventType.DISTRIBUTION_DRIFT, event(20))  # a replayed event: the same window
    drift.add(EventType.WINDOW_SUMMARY, event(30, "x"))  # not a drift event
    assert sorted(drift.clean(stats)) == [((), 250), (("ip_country",), 250)]
    line = drift.line(stats)
    assert "3 window(s) judged" in line and "2 window(s) outside the incidents, 1 of them" in line
    assert "(ip_country 1; records judged in those: 250)" in line
