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
