"""The merger: latest snapshot per partition wins, stale replays ignored, finality over every partition,
one verdict per window, nothing published twice."""

from __future__ import annotations

from streams.windows.clock import PartitionClock
from streams.windows.codec import Closed, Heartbeat, Partial
from streams.windows.merger import WindowMerger
from streams.windows.partial import RuleTally, WindowKey, WindowPartial
from streams.windows.topics import changelog_key, parse_changelog_key, stream_partition

W = WindowKey("urn:c", "1.0.0", "orders", "orders.v1", 0, 10_000)
W2 = WindowKey("urn:c", "1.0.0", "orders", "orders.v1", 10_000, 20_000)
NOW = 1_000_000


def snap(key: WindowKey, partition: int, first: int, last: int, failures: int = 0) -> Partial:
    n = last - first + 1
    rules = {"r": RuleTally(failures)} if failures else {}
    part = WindowPartial(key, "f" * 64, records=n, rows=n, valid=n - failures, quarantined=failures, rules=rules,
                         offsets={partition: ((first, last),)})  # fmt: skip
    return Partial(partition, part)


def hb(partition: int, max_event: int | None, active: int = NOW) -> Heartbeat:
    return Heartbeat("urn:c", "orders", "orders.v1", partition, 2, PartitionClock(max_event, active), active)


def merger() -> WindowMerger:
    return WindowMerger("urn:c", "orders", "orders.v1", lateness_ms=1_000, idle_ms=30_000)


def test_a_window_waits_for_every_partition_then_merges_the_latest_snapshots() -> None:
    m = merger()
    m.feed(snap(W, 0, 0, 4))
    m.feed(snap(W, 0, 0, 9, failures=2))  # cumulative: covers the first
    m.feed(snap(W, 0, 0, 4))  # a stale replay of the first
    m.feed(snap(W, 1, 0, 2))
    m.feed(hb(0, 12_000))
    assert m.due(NOW) == []  # partition 1 has no clock yet
    m.feed(hb(1, 10_500))
    assert m.due(NOW) == []  # partition 1's watermark (9.5 s) is before the window's end
    m.feed(hb(1, 11_000))
    [window] = m.due(NOW)
    assert (window.records, window.quarantined, window.rules["r"].failures) == (13, 2, 2)
    assert dict(window.offsets) == {0: ((0, 9),), 1: ((0, 2),)} and m.stats.stale == 1
    closed, tombstones = m.close([window])
    assert closed == Closed("urn:c", "orders", "orders.v1", 10_000) and len(tombstones) == 2
    assert m.due(NOW) == []  # published once
    m.feed(snap(W, 1, 3, 3))  # a record for a closed window (after an idle close)
    assert m.stats.after_close == 1 and m.due(NOW) == []


def test_an_idle_partition_does_not_hold_windows_back() -> None:
    m = merger()
    m.feed(snap(W, 0, 0, 4))
    m.feed(hb(0, 5_000))
    m.feed(hb(1, None))
    assert m.due(NOW) == []
    [window] = m.due(NOW + 30_000)  # both idle: the last window of a quiet stream closes too
    assert window.key == W


def test_a_new_owner_reading_the_closed_marker_publishes_nothing_again() -> None:
    m = merger()
    for rec in (
        snap(W, 0, 0, 4),
        snap(W2, 0, 5, 6),
        hb(0, 30_000),
        hb(1, 30_000),
        Closed("urn:c", "orders", "orders.v1", 10_000),
    ):
        m.feed(rec)
    assert [w.key for w in m.due(NOW)] == [W2]


def test_topic_keys_and_partitions() -> None:
    assert stream_partition("urn:c", "orders", "orders.v1", 6) == stream_partition("urn:c", "orders", "orders.v1", 6)
    assert {stream_partition(f"urn:c{i}", "o", "t", 6) for i in range(50)} == set(range(6))
    key = changelog_key("urn:c", "orders", "orders.v1", "id", 3, "17/2")
    assert parse_changelog_key(key) == (("urn:c", "orders", "orders.v1", "id", 3), "17/2")
    assert parse_changelog_key(b"nonsense") is None and parse_changelog_key(None) is None


def test_records_after_a_published_window_are_counted_late_in_the_next_one() -> None:
    """A window published by an idle close, then more of its records: counted as late in the next window
    published (never lost from the counts, never counted twice when replayed)."""
    m = merger()
    m.feed(snap(W, 0, 0, 4))
    m.feed(hb(0, 5_000))
    m.feed(hb(1, None))
    [first] = m.due(NOW + 30_000)  # idle close
    m.close([first])
    m.feed(snap(W, 0, 0, 6))  # the cumulative partial of a worker that kept it: 2 more records
    m.feed(snap(W, 0, 0, 6))  # replayed: nothing more
    m.feed(snap(W, 1, 0, 0))  # partition 1 had no records of W when it was published: 1 more
    m.feed(snap(W, 0, 7, 9))  # a fresh partial (its owner dropped the published one): 3 more
    m.feed(snap(W2, 0, 10, 14))
    m.feed(hb(0, 40_000))
    m.feed(hb(1, 40_000))
    [second] = m.due(NOW + 30_000)
    assert (second.key, second.records, second.late) == (W2, 5, 6) and m.stats.late_after_close == 6
    m.close([second])
    m.feed(snap(W2, 0, 10, 14))  # a replay of the published one adds nothing
    assert m.pending_late == 0
