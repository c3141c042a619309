"""A window's freshness: the newest event time of its own records, kept by every partial (merged by max, across
partitions and workers, through the internal topic's codec), and at finalize the age of that newest record when
the window was judged. Before, partials kept no newest event time of their window, so no summary could state
it and ``freshness.seconds`` policies were never fed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import orjson
import polars as pl

from streams.events import validate_event
from streams.events.codec import event_data
from streams.events.window import window_summary
from streams.validation.engine import compile_plan
from streams.windows.codec import Heartbeat, Partial, decode, encode
from streams.windows.finalize import finalize
from streams.windows.merger import WindowMerger
from streams.windows.partial import WindowKey, WindowPartial, merge
from streams.windows.stream import StreamConfig, StreamTime

from .helpers import LATENESS_MS, T0, WINDOW_MS, contract, frame, plan

# a record is skewed when its event time is beyond now + 5 s: at NOW, T0 + 9 s is skewed
NOW = T0 + 2_000
CONFIG = StreamConfig(WINDOW_MS, LATENESS_MS, idle_ms=1_000, max_skew_ms=5_000, unique_ms=3_600_000)


def _process(st: StreamTime, df: pl.DataFrame, partition: int, kafka_ms: list[int],
             dead_ms: list[int] = ()) -> list[Partial | Heartbeat]:  # type: ignore[assignment]  # fmt: skip
    p = st.plan
    report = p.contract.validate(df)
    conformed = compile_plan(p.contract).conform(df)
    n = df.height
    parts, offs = np.full(n, partition), np.arange(n)
    dead = None
    if dead_ms:
        dead = (np.full(len(dead_ms), partition), np.arange(n, n + len(dead_ms)), np.asarray(dead_ms, dtype=np.int64))
    out = st.process(report, conformed, parts, offs, np.asarray(kafka_ms, dtype=np.int64), now_ms=NOW, dead=dead)
    return list(out.records)


def _window_partials(records: list[Partial | Heartbeat], start_ms: int) -> list[Partial]:
    return [r for r in records if isinstance(r, Partial) and r.partial.key.start_ms == start_ms]


def test_a_partial_keeps_the_newest_event_time_of_its_own_records() -> None:
    st = StreamTime(plan(), CONFIG, 1)
    # T0+1s, T0+4s: the window's own; T0+9s is skewed (beyond NOW + 5 s); the 4th row has no event time (placed by
    # its Kafka timestamp, T0+6s, and quarantined); the dead letter's Kafka timestamp T0+6.5s is no event time either
    df = frame([1, 2, 3, 4], [T0 + 1_000, T0 + 4_000, T0 + 9_000, T0], [1.0, 2.0, 3.0, 4.0], ["DE"] * 4,
               ["a", "b", "c", "d"])  # fmt: skip
    df = df.with_columns(pl.when(pl.col("id") == 4).then(None).otherwise(pl.col("event_ts")).alias("event_ts"))
    records = _process(st, df, 0, [T0] * 3 + [T0 + 6_000], dead_ms=[T0 + 6_500])
    (record,) = _window_partials(records, T0)
    partial = record.partial
    assert (partial.records, partial.rows, partial.skewed, partial.dead_lettered) == (5, 4, 1, 1)
    assert partial.newest_event_ms == T0 + 4_000


def test_newest_event_time_merges_by_max_in_any_order() -> None:
    key = WindowKey("urn:x", "1", "s", "t", T0, T0 + WINDOW_MS)
    a, b, c = (WindowPartial(key, "0" * 64, records=1, newest_event_ms=ms) for ms in (T0 + 3, None, T0 + 7))
    assert merge(a, b).newest_event_ms == T0 + 3
    assert merge(b, b).newest_event_ms is None
    for left, right in ((merge(merge(a, b), c), merge(a, merge(b, c))), (merge(a, c), merge(c, a))):
        assert left.same(right)
        assert left.newest_event_ms == T0 + 7


def test_the_codec_carries_it_and_an_older_record_without_it_still_decodes() -> None:
    key = WindowKey("urn:x", "1", "s", "t", T0, T0 + WINDOW_MS)
    partial = WindowPartial(key, "0" * 64, records=2, rows=2, valid=2, offsets={0: ((0, 1),)}, newest_event_ms=T0 + 5)
    back = decode(encode(Partial(0, partial)))
    assert isinstance(back, Partial) and back.partial.same(partial)
    # a record of a worker older than the field: the same JSON without it
    old = replace(partial, newest_event_ms=None)
    raw = encode(Partial(0, old))
    assert b"newest_event_ms" not in raw and b'"counts"' in raw  # not compressed: the JSON is readable
    decoded = decode(raw)
    assert isinstance(decoded, Partial) and decoded.partial.newest_event_ms is None
    # after an upgrade the old partial merges with a new one: the newest known time is kept
    later = WindowPartial(key, "0" * 64, records=1, rows=1, valid=1, offsets={1: ((0, 0),)}, newest_event_ms=T0 + 9)
    assert merge(decoded.partial, later).newest_event_ms == T0 + 9


def test_the_summary_states_the_windows_freshness_when_it_was_judged() -> None:
    workers = [StreamTime(plan(), CONFIG, 2) for _ in range(2)]
    records = _process(workers[0], frame([1, 2], [T0 + 1_000, T0 + 3_000], [1.0, 2.0], ["DE", "FR"], ["a", "b"]),
                       0, [T0, T0])  # fmt: skip
    records += _process(workers[1], frame([3, 4], [T0 + 4_500, T0 + 12_000], [1.0, 2.0], ["DE", "FR"], ["c", "d"]),
                        1, [T0, T0])  # fmt: skip
    p = plan()
    merger = WindowMerger(p.contract.id, p.schema_obj.name, p.schema_obj.topic, LATENESS_MS, CONFIG.idle_ms)
    for rec in records:  # through the internal topic's bytes
        back = decode(encode(rec))
        assert isinstance(back, (Partial, Heartbeat))
        merger.feed(back)
    due = {w.key.start_ms: w for w in merger.due(NOW + 60_000)}
    assert due[T0].newest_event_ms == T0 + 4_500  # the newest of both partitions' records of the window
    closed = T0 + 34_500
    verdict = finalize(p, due[T0], closed_ms=closed)
    assert verdict.freshness_seconds == 30.0
    event = window_summary(contract(), verdict, worker_id="w1")
    validate_event(event)
    data = event_data(event)
    assert (data["newest_event_time"], data["closed_at"], data["freshness_seconds"]) == (
        "2026-01-01T00:00:04.500000Z", "2026-01-01T00:00:34.500000Z", 30.0)  # fmt: skip
    # without a close time (a caller that does not say when) the summary states the newest event time only
    unknown = event_data(window_summary(contract(), finalize(p, due[T0]), worker_id="w1"))
    assert (unknown["freshness_seconds"], unknown["closed_at"]) == (None, None)
    assert orjson.loads(orjson.dumps(unknown))["newest_event_time"] == "2026-01-01T00:00:04.500000Z"
