"""Red team 3: a record without a Kafka timestamp (None, or Kafka's -1) has no usable event time.

Before: the windows stage read ``timestamp_ms or 0``, so where the Kafka timestamp is the event time (no
``qstreams.eventTime``), or places a record (its event-time field missing, a dead letter), such a record landed in
the 1970 window, as a window of its own or as "late". Now, as the joiner's ``bad_time``: it fails ``event_time``
where the Kafka timestamp is the event time, never moves the watermark, and is counted in the window being filled
on its partition (``docs/stream-time.md``)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

from streams.contracts.stream import StreamSpec
from streams.pipeline.records import Message
from streams.validation.engine import compile_plan
from streams.windows.plan import WindowPlan
from streams.windows.stream import StreamConfig, StreamTime
from streams.windows.worker import _kafka_ms
from tests.unit.windows.helpers import LATENESS_MS, T0, WINDOW_MS, contract

NOW = T0 + 3_600_000
CONFIG = StreamConfig(WINDOW_MS, LATENESS_MS, idle_ms=5_000, max_skew_ms=10**12, unique_ms=3_600_000)


def _plan(event_time: str | None) -> WindowPlan:
    c = contract()
    return WindowPlan.of(c, c.schema(), StreamSpec(event_time, WINDOW_MS, LATENESS_MS, 3_600_000))


def _frame(n: int, ts: list[int | None] | None = None) -> pl.DataFrame:
    stamps = [None if t is None else datetime.fromtimestamp(t / 1000, tz=UTC) for t in (ts or [T0] * n)]
    return pl.DataFrame({
        "id": pl.Series(range(n), dtype=pl.Int64),
        "event_ts": pl.Series(stamps, dtype=pl.Datetime("us", "UTC")),
        "amount": pl.Series([1.0] * n, dtype=pl.Float64),
        "country": pl.Series(["DE"] * n, dtype=pl.String),
        "code": pl.Series([f"c{i}" for i in range(n)], dtype=pl.String),
    })  # fmt: skip


def _process(st: StreamTime, df: pl.DataFrame, kafka: list[int], dead: list[int] = ()):  # type: ignore[no-untyped-def,assignment]
    n = df.height
    d = (np.zeros(len(dead), dtype=np.int64), np.arange(n, n + len(dead)), np.array(dead, dtype=np.int64))
    return st.process(
        st.plan.contract.validate(df), compile_plan(st.plan.contract).conform(df), np.zeros(n, dtype=np.int64),
        np.arange(n), np.array(kafka, dtype=np.int64), now_ms=NOW, dead=d if dead else None,
    )  # fmt: skip


def _windows(st: StreamTime) -> list[int]:
    return sorted(k.start_ms for k in st.states[0].open)


def test_the_worker_reads_a_missing_kafka_timestamp_as_none_not_1970() -> None:
    def m(t: int | None) -> Message:
        return Message("t", 0, 0, b"{}", None, (), t)

    assert [_kafka_ms(m(t)) for t in (None, -1, -5, 0, T0)] == [-1, -1, -1, 0, T0]


def test_kafka_time_a_record_without_a_timestamp_fails_event_time_and_counts_in_the_current_window() -> None:
    st = StreamTime(_plan(None), CONFIG, 1)
    out = _process(st, _frame(4), [T0 + 1_000, -1, T0 + 2_000, -1])
    assert out.bad_time.tolist() == [False, True, False, True]
    assert out.valid.tolist() == [True, False, True, False]
    assert out.marks.late.tolist() == [False] * 4
    assert out.marks.event_ms.tolist() == [T0 + 1_000, T0 + 1_000, T0 + 2_000, T0 + 2_000]
    assert _windows(st) == [T0 - T0 % WINDOW_MS]  # no 1970 window
    assert st.states[0].clock.max_event_ms == T0 + 2_000


def test_kafka_time_a_first_record_without_a_timestamp_is_placed_at_the_wall_clock_and_moves_nothing() -> None:
    st = StreamTime(_plan(None), CONFIG, 1)
    out = _process(st, _frame(2), [-1, T0 + 1_000])
    assert out.bad_time.tolist() == [True, False]
    assert out.marks.late.tolist() == [False, False]  # not late: the wall-clock window is after T0's
    assert out.marks.event_ms.tolist() == [NOW, T0 + 1_000]
    assert 0 not in _windows(st)
    assert st.states[0].clock.max_event_ms == T0 + 1_000  # the placed record did not move the watermark


def test_event_time_field_missing_and_no_kafka_timestamp_nor_dead_letters_land_in_1970() -> None:
    st = StreamTime(_plan("event_ts"), CONFIG, 1)
    out = _process(st, _frame(3, [T0 + 1_000, None, T0 + 2_000]), [T0 + 1_000, -1, T0 + 2_000], dead=[-1])
    assert out.bad_time.tolist() == [False, True, False]
    assert out.marks.event_ms.tolist() == [T0 + 1_000, T0 + 1_000, T0 + 2_000]
    assert out.marks.late.tolist() == [False] * 3
    assert _windows(st) == [T0 - T0 % WINDOW_MS]
    assert st.states[0].clock.max_event_ms == T0 + 2_000
