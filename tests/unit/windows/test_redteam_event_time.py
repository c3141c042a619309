"""Records without an event time (quarantined for ``event_time``, or dead-lettered) are placed by their Kafka
timestamp, which is another clock than the event-time field: it must not move the partition's watermark.

Found by the red-team pass: on a stream whose event times lag the Kafka timestamps (a backfill, or a producer a
minute behind), one record without its event-time field moved the watermark to its Kafka timestamp, and every
later record of the partition was counted as late: in no window's frame, so the windows were judged without them.
The independent computation is a plain loop over the records with valid event times (the docs' definition).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

from streams.validation.engine import compile_plan
from streams.windows.stream import StreamConfig, StreamTime

from .helpers import LATENESS_MS, T0, WINDOW_MS, plan

NOW = T0 + 86_400_000  # processed a day after the events (a backfill)
CONFIG = StreamConfig(WINDOW_MS, LATENESS_MS, idle_ms=5_000, max_skew_ms=10**12, unique_ms=3_600_000)


def _frame(ids: list[int], ts: list[int | None]) -> pl.DataFrame:
    stamps = [None if t is None else datetime.fromtimestamp(t / 1000, tz=UTC) for t in ts]
    return pl.DataFrame(
        {
            "id": pl.Series(ids, dtype=pl.Int64),
            "event_ts": pl.Series(stamps, dtype=pl.Datetime("us", "UTC")),
            "amount": pl.Series([1.0] * len(ids), dtype=pl.Float64),
            "country": pl.Series(["DE"] * len(ids), dtype=pl.String),
            "code": pl.Series([f"c{i}" for i in ids], dtype=pl.String),
        }
    )


def _late_by_loop(ts: list[int | None]) -> list[bool]:
    """Late per record, by the documented definition over the event times seen (records without one are not)."""
    newest: int | None = None
    out = []
    for t in ts:
        if t is None:
            out.append(False)
            continue
        out.append(newest is not None and (t - t % WINDOW_MS) + WINDOW_MS <= newest - LATENESS_MS)
        newest = t if newest is None else max(newest, t)
    return out


def _process(st: StreamTime, ids: list[int], ts: list[int | None], first: int, dead: int = 0):  # type: ignore[no-untyped-def]
    df = _frame(ids, ts)
    p = st.plan
    n = len(ids)
    dead_arrays = None
    if dead:
        dead_arrays = (np.zeros(dead, dtype=np.int64), np.arange(first + n, first + n + dead), np.full(dead, NOW))
    return st.process(
        p.contract.validate(df), compile_plan(p.contract).conform(df), np.zeros(n, dtype=np.int64),
        np.arange(first, first + n), np.full(n, NOW, dtype=np.int64), now_ms=NOW, dead=dead_arrays,
    )  # fmt: skip


def test_a_record_without_event_time_does_not_make_the_next_ones_late() -> None:
    st = StreamTime(plan(), CONFIG, 1)
    ts: list[int | None] = [T0 + 1_000, T0 + 2_000, None, T0 + 3_000, T0 + 4_000]
    out = _process(st, [1, 2, 3, 4, 5], ts, 0)
    assert out.bad_time.tolist() == [False, False, True, False, False]
    assert out.marks.late.tolist() == _late_by_loop(ts) == [False] * 5
    assert st.states[0].clock.max_event_ms == T0 + 4_000  # the Kafka timestamp (a day later) is no event time


def test_a_dead_letter_does_not_make_the_next_records_late() -> None:
    st = StreamTime(plan(), CONFIG, 1)
    _process(st, [1], [T0 + 1_000], 0, dead=1)  # offset 1: undecodable, Kafka timestamp a day later
    out = _process(st, [2, 3], [T0 + 2_000, T0 + 3_000], 2)
    assert out.marks.late.tolist() == [False, False]
    assert st.states[0].clock.max_event_ms == T0 + 3_000


def test_without_an_event_time_field_the_kafka_timestamp_is_the_event_time() -> None:
    """Unchanged: a binding judged on Kafka timestamps advances its watermark with every record, dead letters too."""
    p = plan()
    from dataclasses import replace

    st = StreamTime(replace(p, stream=replace(p.stream, event_time=None)), CONFIG, 1)
    _process(st, [1], [T0 + 1_000], 0, dead=1)
    assert st.states[0].clock.max_event_ms == NOW


def test_a_partition_bringing_only_records_without_event_time_does_not_hold_windows_back() -> None:
    """Such records do not move its watermark, nor keep it active: after the idle delay it stops holding the
    topic's windows back, as a quiet partition does (it kept them open for as long as the garbage flowed)."""
    from streams.windows.merger import WindowMerger

    p = plan()
    cfg = StreamConfig(WINDOW_MS, LATENESS_MS, idle_ms=5_000, max_skew_ms=10**12, unique_ms=3_600_000)
    st = StreamTime(p, cfg, 2)
    merger = WindowMerger(p.contract.id, p.schema_obj.name, p.schema_obj.topic, LATENESS_MS, 5_000)
    now = T0 + 60_000

    def send(records: tuple) -> None:  # type: ignore[type-arg]
        for r in records:
            merger.feed(r)

    df = _frame([1, 2], [T0 + 1_000, T0 + 2_000])
    out = st.process(
        p.contract.validate(df), compile_plan(p.contract).conform(df), np.zeros(2, dtype=np.int64), np.arange(2),
        np.full(2, now), now_ms=now,
    )  # fmt: skip
    send(out.records)
    empty = _frame([], [])
    for k in range(20):  # partition 1: an undecodable message every second, for 20 s
        at = now + 1_000 * k
        dead = (np.ones(1, dtype=np.int64), np.array([k]), np.array([at]))
        out = st.process(
            p.contract.validate(empty), compile_plan(p.contract).conform(empty), np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), now_ms=at, dead=dead,
        )  # fmt: skip
        send(out.records)
    st.settle(0, 2)
    st.settle(1, 20)
    send(tuple(st.heartbeats(now + 20_000)))
    due = merger.due(now + 20_000)
    assert (due[0].key.start_ms, due[0].rows) == (T0, 2)
    # the dead letters are placed by their Kafka timestamps: in windows of their own, published too
    assert sum(w.dead_lettered for w in due) == 20 and all(w.rows == 0 for w in due[1:])
