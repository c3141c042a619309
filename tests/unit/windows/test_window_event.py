"""The window.summary event: schema-valid, deterministic id per window, key = contract id, UTC Z times."""

from __future__ import annotations

import numpy as np
import pytest

from streams.events import EventType, from_kafka, to_kafka, validate_event
from streams.events.codec import event_data
from streams.events.window import window_summary, window_violations
from streams.windows.finalize import finalize

from .helpers import T0, Stream, frame, plan


def verdicts():  # type: ignore[no-untyped-def]
    stream = Stream.new(plan())
    df = frame(
        [1, 1, 2, None],
        [T0 + 100, T0 + 200, T0 + 11_000, T0 + 300],
        [5.0, -1.0, 70.0, None],
        ["DE", "XX", "FR", None],
        ["a", "a", "b", None],
    )
    stream.batch(df, np.array([0, 1, 0, 1]), np.array([7, 3, 8, 4]), now_ms=T0 + 20_000)
    return stream, {k.start_ms: finalize(stream.plan, v) for k, v in stream.windows.items()}


def test_window_summary_event() -> None:
    stream, by_start = verdicts()
    verdict = by_start[T0]
    event = window_summary(stream.plan.contract, verdict, worker_id="w-1")
    validate_event(event)
    data = event_data(event)
    assert event.get_type() == str(EventType.WINDOW_SUMMARY)
    assert data["window"] == {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:10Z"}
    assert (data["records"], data["rows"], data["valid"], data["quarantined"]) == (3, 3, 1, 2)  # bad amount, null id
    assert data["partitions"] == [{"partition": 0, "first": 7, "last": 7}, {"partition": 1, "first": 3, "last": 4}]
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["amount:minimum"]["failures"] == 1 and checks["amount:minimum"]["first_offending"] == [
        {"partition": 1, "offset": 3}
    ]
    assert checks["countries"]["evaluation"] == "batches" and checks["id:unique"]["evaluation"] == "stream"
    assert checks["enough_rows"]["passed"] is False and event.get_extension("severity") == "error"
    key, value, headers = to_kafka(event)
    assert key == b"urn:test:orders"
    back = from_kafka(key, value, headers)
    assert back.get_id() == event.get_id()


def test_ids_are_deterministic_per_window() -> None:
    stream, by_start = verdicts()
    replayed, again = verdicts()  # the same records judged again (a new owner after a crash)
    c = stream.plan.contract
    a = window_summary(c, by_start[T0], worker_id="w-1")
    b = window_summary(replayed.plan.contract, again[T0], worker_id="w-2")
    other = window_summary(c, by_start[T0 + 10_000], worker_id="w-1")
    assert a.get_id() == b.get_id() and a.get_id() != other.get_id()


def test_a_verdict_of_another_contract_is_refused() -> None:
    stream, by_start = verdicts()
    from dataclasses import replace

    with pytest.raises(ValueError, match="not for contract"):
        window_summary(replace(stream.plan.contract, version="9.9.9"), by_start[T0], worker_id="w")


def test_window_violations_once_per_failed_rule_schema_valid_and_deterministic() -> None:
    stream, by_start = verdicts()
    verdict = by_start[T0]
    c = stream.plan.contract
    events = window_violations(c, verdict, worker_id="w-1")
    failed = [ch.result.name for ch in verdict.checks if not ch.result.passed]
    assert failed and [e.get_extension("rule") for e in events] == failed
    for event in events:
        validate_event(event)
        assert event.get_type() == str(EventType.RULE_VIOLATION)
    data = {event_data(e)["rule"]["name"]: event_data(e) for e in events}
    assert data["amount:minimum"]["scope"] == "window" and data["amount:minimum"]["failures"] == 1
    assert data["amount:minimum"]["first_offending"] == [{"partition": 1, "offset": 3}]
    assert data["amount:minimum"]["window"] == {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:10Z"}
    _, again = verdicts()  # the same window judged again: the same ids, so consumers de-duplicate
    assert [e.get_id() for e in window_violations(c, again[T0], worker_id="w-2")] == [e.get_id() for e in events]
    assert len({e.get_id() for e in events}) == len(events)
