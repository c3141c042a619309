"""Event time, epoch-aligned windows, watermarks, late and skewed records, finality and idle close."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.windows.batch import annotate
from streams.windows.clock import ALL_FINAL, PartitionClock, event_times, final_through, observe, window_starts

W, L = 10_000, 2_000
NOW = 1_000_000


def test_windows_are_epoch_aligned_start_inclusive_end_exclusive() -> None:
    ts = np.array([0, 9_999, 10_000, 19_999, -1, -10_000, -10_001])
    assert window_starts(ts, W).tolist() == [0, 0, 10_000, 10_000, -10_000, -10_000, -20_000]


def test_event_time_from_a_field_or_the_kafka_timestamp() -> None:
    df = pl.DataFrame(
        {
            "ts": pl.Series([datetime(2026, 1, 1, tzinfo=UTC), None], dtype=pl.Datetime("us", "UTC")),
            "text": ["2026-01-01T00:00:01Z", "yesterday"],
            "day": pl.Series([datetime(2026, 1, 2).date(), None]),
        }
    )
    kafka = np.array([5, 6])
    t0 = 1_767_225_600_000
    by_field = event_times(df, "ts", kafka)
    assert by_field.ms.tolist() == [t0, 6] and by_field.bad.tolist() == [False, True]
    by_text = event_times(df, "text", kafka)
    assert by_text.ms.tolist() == [t0 + 1000, 6] and by_text.bad.tolist() == [False, True]
    assert event_times(df, "day", kafka).ms.tolist() == [t0 + 86_400_000, 6]
    assert event_times(df, None, kafka).ms.tolist() == [5, 6]
    missing = event_times(df, "nope", kafka)
    assert missing.ms.tolist() == [5, 6] and missing.bad.all()


def test_late_records_are_those_whose_window_closed_before_they_arrived() -> None:
    # window [0, 10s): closes when the watermark (max - 2 s) reaches 10 s, i.e. after an event at 12 s
    ts = np.array([1_000, 11_000, 9_000, 12_000, 9_500, 25_000])
    seen = observe(PartitionClock(), ts, now_ms=NOW, window_ms=W, lateness_ms=L, max_skew_ms=0)
    assert seen.late.tolist() == [False, False, False, False, True, False]
    assert seen.current[4] == 10_000  # counted in the window being filled (of the newest event, 12 s)
    assert seen.clock.max_event_ms == 25_000 and seen.clock.watermark(L) == 23_000
    assert seen.clock.last_active_ms == NOW


def test_skewed_records_do_not_advance_the_watermark() -> None:
    ts = np.array([1_000, NOW + 60_000, 2_000])
    seen = observe(PartitionClock(), ts, now_ms=NOW, window_ms=W, lateness_ms=L, max_skew_ms=30_000)
    assert seen.skewed.tolist() == [False, True, False]
    assert seen.clock.max_event_ms == 2_000 and not seen.late.any()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 100_000), min_size=1, max_size=60), st.lists(st.integers(1, 10), min_size=1))
def test_late_marks_do_not_depend_on_how_batches_are_cut(ts: list[int], cuts: list[int]) -> None:
    whole = observe(PartitionClock(), np.array(ts), now_ms=NOW, window_ms=W, lateness_ms=L, max_skew_ms=0)
    clock, late, i, k = PartitionClock(), [], 0, 0
    while i < len(ts):
        size = cuts[k % len(cuts)]
        seen = observe(clock, np.array(ts[i : i + size]), now_ms=NOW, window_ms=W, lateness_ms=L, max_skew_ms=0)
        clock, i, k = seen.clock, i + size, k + 1
        late += seen.late.tolist()
    assert late == whole.late.tolist() and clock.max_event_ms == whole.clock.max_event_ms
    # the reference: a plain loop
    newest, expect = None, []
    for t in ts:
        expect.append(newest is not None and (t - t % W) + W <= newest - L)
        newest = t if newest is None else max(newest, t)
    assert late == expect


def test_a_window_is_final_when_every_partition_passed_its_end_or_is_idle() -> None:
    clocks = {0: PartitionClock(30_000, NOW), 1: PartitionClock(15_000, NOW)}
    assert final_through(clocks, [0, 1], now_ms=NOW, lateness_ms=L, idle_ms=30_000) == 13_000
    assert final_through(clocks, [0, 1, 2], now_ms=NOW, lateness_ms=L, idle_ms=30_000) is None  # 2 unseen
    # partition 1 goes quiet: after the idle delay it no longer holds windows back
    later = NOW + 30_000
    assert final_through(clocks, [0, 1], now_ms=later, lateness_ms=L, idle_ms=30_000) == ALL_FINAL
    clocks[0] = PartitionClock(30_000, later)
    assert final_through(clocks, [0, 1], now_ms=later, lateness_ms=L, idle_ms=30_000) == 28_000


def test_annotate_keeps_one_clock_per_partition() -> None:
    marks, clocks = annotate(
        {}, np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1]), np.array([20_000, 1_000, 1_000, 2_000]),
        now_ms=NOW, window_ms=W, lateness_ms=L, max_skew_ms=0,
    )  # fmt: skip
    assert marks.late.tolist() == [False, False, True, False]  # only partition 0 had moved on
    assert clocks[0].max_event_ms == 20_000 and clocks[1].max_event_ms == 2_000
    assert PartitionClock(5, 1).merge(PartitionClock(3, 9)) == PartitionClock(5, 9)
