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
from streams.demo.scenario import KINDS, default_schedule
from streams.demo.view import evaluate
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
    assert all(r.detection.detected for r in evaluate(incidents, tracker, stats))


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
