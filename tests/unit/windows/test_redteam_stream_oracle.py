"""Window counts over arbitrary streams with records without event time, dead letters and skewed records, against
a plain loop written from docs/stream-time.md.

Per source partition, in offset order: a record whose time (event time, else Kafka timestamp) is beyond now + max
skew is *skewed* (its own window, no watermark move); a record without an event time (null field) or a dead letter
is placed by its Kafka timestamp and moves no watermark (the red-team fix: it made every later record late); any
other record moves the watermark (newest event time - lateness). A record is *late* when its window's end <= the
watermark before it: counted as ``late`` in the window of the newest event time seen, in no frame. Every other
record counts in its window: ``records``, ``rows`` (decoded), ``dead_lettered``, ``skewed``; quarantined = rows
not valid.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.validation.engine import compile_plan
from streams.windows.codec import Partial
from streams.windows.partial import merge_all
from streams.windows.stream import StreamConfig, StreamTime

from .helpers import LATENESS_MS, T0, WINDOW_MS, plan

NOW = T0 + 100_000
SKEW = 30_000
PARTITIONS = 3

record = st.tuples(
    st.integers(0, PARTITIONS - 1),
    st.sampled_from(["ok", "ok", "ok", "no_time", "dead", "skewed"]),
    st.integers(0, 60_000),  # event time offset
    st.integers(0, 200_000),  # Kafka timestamp offset (another clock)
)


def _loop(records: list[tuple]) -> Counter:
    newest: dict[int, int | None] = dict.fromkeys(range(PARTITIONS))
    out: Counter = Counter()
    for part, kind, ev, kafka in records:
        t = T0 + (ev if kind in ("ok", "skewed") else kafka)
        if kind == "skewed":
            t = NOW + SKEW + 1 + ev
        start = t - t % WINDOW_MS
        mark = None if newest[part] is None else newest[part] - LATENESS_MS
        if mark is not None and start + WINDOW_MS <= mark:
            cur = newest[part]
            out[(cur - cur % WINDOW_MS, "late")] += 1
        else:
            out[(start, "records")] += 1
            out[(start, "dead_lettered" if kind == "dead" else "rows")] += 1
            if t > NOW + SKEW:  # skewed (a Kafka timestamp placing a record can be, too)
                out[(start, "skewed")] += 1
        if kind == "ok":
            newest[part] = t if newest[part] is None else max(newest[part], t)
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record, min_size=1, max_size=40), st.integers(1, 8))
def test_window_counts_equal_a_plain_loop(records: list[tuple], size: int) -> None:
    p = plan()
    stream = StreamTime(p, StreamConfig(WINDOW_MS, LATENESS_MS, 5_000, SKEW, 3_600_000), PARTITIONS)
    c = p.contract
    offsets: list[int] = []
    nxt = dict.fromkeys(range(PARTITIONS), 0)
    for part, *_ in records:
        offsets.append(nxt[part])
        nxt[part] += 1
    partials: dict = {}
    for i in range(0, len(records), size):
        chunk = [(r, o) for r, o in zip(records[i : i + size], offsets[i : i + size], strict=True)]
        rows = [(r, o) for r, o in chunk if r[1] != "dead"]
        dead = [(r, o) for r, o in chunk if r[1] == "dead"]
        stamps = []
        for (_, kind, ev, _), _ in rows:
            ms = NOW + SKEW + 1 + ev if kind == "skewed" else T0 + ev
            stamps.append(None if kind == "no_time" else datetime.fromtimestamp(ms / 1000, tz=UTC))
        n = len(rows)
        df = pl.DataFrame(
            {
                "id": pl.Series([None] * n, dtype=pl.Int64),
                "event_ts": pl.Series(stamps, dtype=pl.Datetime("us", "UTC")),
                "amount": pl.Series([1.0] * n, dtype=pl.Float64),
                "country": pl.Series(["DE"] * n, dtype=pl.String),
                "code": pl.Series([None] * n, dtype=pl.String),
            }
        )
        dead_arrays = (
            np.array([r[0] for r, _ in dead], dtype=np.int64),
            np.array([o for _, o in dead], dtype=np.int64),
            np.array([T0 + r[3] for r, _ in dead], dtype=np.int64),
        )
        out = stream.process(
            c.validate(df), compile_plan(c).conform(df), np.array([r[0] for r, _ in rows], dtype=np.int64),
            np.array([o for _, o in rows], dtype=np.int64), np.array([T0 + r[3] for r, _ in rows], dtype=np.int64),
            now_ms=NOW, dead=dead_arrays,
        )  # fmt: skip
        for rec in out.records:
            if isinstance(rec, Partial):
                partials[(rec.partial.key, rec.partition)] = rec.partial  # cumulative snapshots
    windows: dict = {}
    for (key, _), part in partials.items():
        windows.setdefault(key.start_ms, []).append(part)
    got: Counter = Counter()
    for start, parts in windows.items():
        w = merge_all(parts)
        assert w is not None
        for name in ("records", "rows", "dead_lettered", "late", "skewed"):
            if getattr(w, name):
                got[(start, name)] += getattr(w, name)
        assert w.quarantined == w.rows - w.valid
    assert got == _loop(records)
