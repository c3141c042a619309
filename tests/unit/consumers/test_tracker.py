"""The event tracker on window events: final counts per window, dead letters as signals, bounded de-duplication."""

from __future__ import annotations

from streams.consumers.tracker import EventTracker
from streams.events.types import EventType

CONTRACT = {"id": "urn:c", "version": "1.0.0"}


def summary(start: str, end: str, **counts: int) -> dict[str, object]:
    return {"contract": CONTRACT, "topic": "t", "window": {"start": start, "end": end}, **counts}


def test_window_summaries_are_the_counts_and_batch_summaries_only_a_fallback() -> None:
    tracker = EventTracker()
    batch = {"contract": CONTRACT, "window": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:01Z"},
             "counts": {"valid": 7, "quarantined": 1, "dead_lettered": 0}}  # fmt: skip
    tracker.add(EventType.BATCH_SUMMARY, "b1", batch)
    assert +tracker.totals() == {"valid": 7, "quarantined": 1}  # no window final yet: the running batch counts
    first = summary("2026-01-01T00:00:00Z", "2026-01-01T00:00:10Z", records=12, valid=9, quarantined=1, dead_lettered=2)
    second = summary("2026-01-01T00:00:10Z", "2026-01-01T00:00:20Z", records=3, valid=3, quarantined=0, dead_lettered=0)
    tracker.add(EventType.WINDOW_SUMMARY, "w1", first)
    tracker.add(EventType.WINDOW_SUMMARY, "w2", second)
    assert tracker.totals() == {"valid": 12, "quarantined": 1, "dead_lettered": 2}  # the windows' verdicts win
    [dead] = tracker.signals
    assert (dead.kind, dead.count, dead.start.second, dead.end.second) == ("dead_letter", 2, 0, 10)
    assert tracker.windows == 2


def test_replays_are_recognised_within_a_bounded_memory() -> None:
    tracker = EventTracker(remember=3)
    for i in range(5):
        tracker.add(EventType.WINDOW_SUMMARY, f"w{i}", summary("2026-01-01T00:00:00Z", "2026-01-01T00:00:10Z",
                                                               records=1, valid=1))  # fmt: skip
    tracker.add(EventType.WINDOW_SUMMARY, "w4", summary("2026-01-01T00:00:00Z", "2026-01-01T00:00:10Z", valid=1))
    assert tracker.duplicates == 1 and len(tracker.seen_ids) == 3 and tracker.totals()["valid"] == 5


def performance(eid: str, window: tuple[int, int], version: str, confusion: tuple[int, int, int, int], unmatched: int,
                orphans: int = 0) -> tuple[str, dict[str, object]]:  # fmt: skip
    """A model.performance event: id and data (``window`` in seconds of 2026-01-01T00:00; tp, fp, tn, fn)."""
    tp, fp, tn, fn = confusion
    count = tp + fp + tn + fn
    return eid, {
        "contract": CONTRACT, "topic": "preds", "scope": "window", "model_version": version,
        "window": {"start": f"2026-01-01T00:00:{window[0]:02d}Z", "end": f"2026-01-01T00:00:{window[1]:02d}Z"},
        "count": count, "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
        "accuracy": (tp + tn) / count if count else None, "unmatched_predictions": unmatched, "orphan_labels": orphans,
    }  # fmt: skip


def test_model_performance_events_add_up_per_model_version() -> None:
    tracker = EventTracker()
    for eid, data in (
        performance("p1", (0, 10), "3.2.1", (5, 2, 85, 8), 11),
        performance("p2", (10, 20), "3.2.1", (1, 0, 47, 2), 6),
        performance("p3", (10, 20), "3.3.0", (2, 18, 18, 2), 4),
        performance("p4", (10, 20), "", (0, 0, 0, 0), 0, orphans=3),  # orphan labels only: no version, no accuracy
        performance("p3", (10, 20), "3.3.0", (2, 18, 18, 2), 4),  # a replay (same id): counted once
    ):
        tracker.add(EventType.MODEL_PERFORMANCE, eid, data, "info" if eid == "p4" else "ok")
    old, new, orphans = (tracker.performance[v] for v in ("3.2.1", "3.3.0", ""))
    assert (old.windows, old.labelled, old.correct, old.unmatched, old.orphans) == (2, 150, 138, 17, 0)
    assert old.accuracy == 138 / 150 and new.accuracy == 0.5 and tracker.duplicates == 1
    assert (orphans.windows, orphans.labelled, orphans.orphans, orphans.accuracy) == (1, 0, 3, None)
    assert tracker.performance_through is not None and tracker.performance_through.second == 20
    signals = [s for s in tracker.signals if s.kind == "performance"]
    assert [(s.detail, s.count, s.start.second) for s in signals] == [
        ("3.2.1", 100, 0), ("3.2.1", 50, 10), ("3.3.0", 40, 10), ("", 0, 10)
    ]  # fmt: skip
    assert dict(signals[2].measures) == {"accuracy": 0.5, "labelled": 40, "correct": 20, "unmatched": 4, "orphans": 0}
    assert "accuracy" not in dict(signals[3].measures) and signals[3].severity == "info"
    assert tracker.latest[0][4] == "labels without a prediction: no label, 0 unmatched, 3 orphan labels"
