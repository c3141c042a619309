"""Red-team pass 3: :class:`EventTracker` fed what a quality-event topic may hold.

Found: a field of the wrong type (``"counts": "x"``, ``"failures": null``, ``"fields": [1]``, a data that is not an
object) raised ``AttributeError`` / ``TypeError`` / ``ValueError`` out of ``add`` and stopped the consumer (the
demo's reader); an event whose ``window`` could not be read was placed at the wall clock and moved
``drift_through`` (and the confidence / performance marks) to now, claiming windows judged that never were;
``signals`` and ``lifecycle`` grew without bound (issue 13 bounded only the de-duplication ids).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.consumers.tracker import EventTracker
from streams.events.types import EventType

WINDOW = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:01:00Z"}
RECEIVED = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_KEYS = ["counts", "rule", "failures", "unknown_fields", "missing_fields", "type_mismatches", "fields", "records"]
_KEYS += ["count", "metrics", "mean_confidence", "confusion", "valid", "dead_lettered", "quarantined", "window"]
_KEYS += ["contract", "topic", "model_version", "verdict"]
_keys = st.sampled_from(_KEYS)


@settings(max_examples=400, deadline=None)
@given(
    event_type=st.sampled_from([str(t) for t in EventType] + ["io.qualitystreams.window.summary.v2", "x"]),
    data=st.dictionaries(_keys, _json, max_size=6) | _json,
)
def test_any_data_is_folded_in_without_raising(event_type: str, data: Any) -> None:
    tracker = EventTracker()
    tracker.add(event_type, "id", data, "error", RECEIVED)
    tracker.add(event_type, "id", data, "error", RECEIVED)
    assert (tracker.events, tracker.duplicates) == (1, 1)
    assert all(n >= 0 for c in tracker.outcomes.values() for n in c.values())


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        (EventType.BATCH_SUMMARY, {"counts": "x"}),
        (EventType.BATCH_SUMMARY, {"counts": {"valid": None, "dead_lettered": "3"}}),
        (EventType.RULE_VIOLATION, {"rule": "amount_positive", "failures": None}),
        (EventType.SCHEMA_DRIFT, {"unknown_fields": {"a": "many"}}),
        (EventType.DISTRIBUTION_DRIFT, {"fields": [1, {"verdict": "drift"}], "records": None}),
        (EventType.PREDICTION_CONFIDENCE, {"count": math.nan, "metrics": 3}),
        (EventType.MODEL_PERFORMANCE, {"confusion": [1, 2], "count": math.inf}),
        (EventType.WINDOW_SUMMARY, {"valid": "12", "dead_lettered": None}),
        (EventType.WINDOW_SUMMARY, ["not", "an", "object"]),
    ],
)
def test_fields_of_the_wrong_type_count_as_absent(event_type: str, data: Any) -> None:
    tracker = EventTracker()
    tracker.add(event_type, "e1", data | {"window": WINDOW} if isinstance(data, dict) else data, None, RECEIVED)
    assert tracker.events == 1
    assert sum(tracker.totals().values()) == 0


def test_negative_counts_do_not_subtract() -> None:
    tracker = EventTracker()
    tracker.add(EventType.WINDOW_SUMMARY, "a", {"window": WINDOW, "valid": 5})
    tracker.add(EventType.WINDOW_SUMMARY, "b", {"window": WINDOW, "valid": -100})
    assert tracker.totals()["valid"] == 5


@pytest.mark.parametrize(
    "window", [None, "x", {"start": "yesterday", "end": "today"}, {"start": WINDOW["end"], "end": WINDOW["start"]}]
)
def test_an_unreadable_window_does_not_advance_the_judged_through_marks(window: Any) -> None:
    tracker = EventTracker()
    tracker.add(EventType.DISTRIBUTION_DRIFT, "ok", {"window": WINDOW, "fields": [], "records": 1})
    tracker.add(EventType.DISTRIBUTION_DRIFT, "bad", {"window": window, "fields": [{"field": "a", "verdict": "drift"}]},
                "warning", RECEIVED)  # fmt: skip
    tracker.add(EventType.PREDICTION_CONFIDENCE, "c", {"window": window, "verdict": "drift"}, "warning", RECEIVED)
    tracker.add(EventType.MODEL_PERFORMANCE, "p", {"window": window, "count": 1}, "ok", RECEIVED)
    assert tracker.drift_through == dt.datetime(2026, 1, 1, 0, 1, tzinfo=dt.UTC)
    assert tracker.confidence_through is None and tracker.performance_through is None
    drifted = [s for s in tracker.signals if s.kind == "distribution_drift"]
    assert [(s.start, s.end) for s in drifted] == [(RECEIVED, RECEIVED)]  # placed when it was received


def test_signals_and_lifecycle_are_bounded() -> None:
    tracker = EventTracker(max_signals=10, max_lifecycle=3)
    for i in range(50):
        tracker.add(EventType.RULE_VIOLATION, f"v{i}", {"window": WINDOW, "rule": {"name": f"r{i}"}, "failures": 1})
        tracker.add(EventType.WORKER_LIFECYCLE, f"l{i}", {"phase": "started", "worker_id": f"w{i}"})
    assert [s.detail for s in tracker.signals] == [f"r{i}" for i in range(40, 50)]
    assert [e["worker_id"] for e in tracker.lifecycle] == ["w47", "w48", "w49"]
    assert tracker.rule_failures[("?@?", "r0", "error")] == 1  # the aggregates still count every event


def _violation(scope: str | None, contract: str, failures: int) -> dict[str, Any]:
    data = {"window": WINDOW, "contract": {"id": contract, "version": "1"}, "rule": {"name": "amount", "severity":
            "error"}, "failures": failures}  # fmt: skip
    return data | ({"scope": scope} if scope else {})


def test_batch_and_window_scope_of_the_same_rows_are_not_added_up() -> None:
    """With ``STREAMS_BATCH_EVENTS=true`` and stream time a worker publishes a batch-scope violation per batch and
    a window-scope one per window, for the same failing rows: the top failing rules counted them twice, and the
    outcomes of a contract judged per window hid those of a contract judged only per batch."""
    tracker = EventTracker()
    tracker.add(EventType.RULE_VIOLATION, "b1", _violation("batch", "windowed", 3))
    tracker.add(EventType.RULE_VIOLATION, "b2", _violation("batch", "windowed", 2))
    tracker.add(EventType.RULE_VIOLATION, "w1", _violation("window", "windowed", 5))
    tracker.add(EventType.RULE_VIOLATION, "o1", _violation(None, "batch-only", 4))  # an older producer: batch
    tracker.add(EventType.BATCH_SUMMARY, "s1", {"window": WINDOW, "contract": {"id": "batch-only", "version": "1"},
                                                "counts": {"valid": 7, "quarantined": 4}})  # fmt: skip
    tracker.add(EventType.BATCH_SUMMARY, "s2", {"window": WINDOW, "contract": {"id": "windowed", "version": "1"},
                                                "counts": {"valid": 95, "quarantined": 5}})  # fmt: skip
    tracker.add(EventType.WINDOW_SUMMARY, "s3", {"window": WINDOW, "contract": {"id": "windowed", "version": "1"},
                                                 "valid": 95, "quarantined": 5})  # fmt: skip
    assert dict(tracker.top_rules()) == {("windowed@1", "amount", "error"): 5, ("batch-only@1", "amount", "error"): 4}
    assert tracker.outcomes == {"windowed@1": {"valid": 95, "quarantined": 5, "dead_lettered": 0},
                                "batch-only@1": {"valid": 7, "quarantined": 4}}  # fmt: skip
    assert tracker.totals() == {"valid": 102, "quarantined": 9, "dead_lettered": 0}
