"""A skewed record's window, published by an idle close, does not close every window before it.

Found by the red-team pass: one record a year ahead of the wall clock (skewed: judged in its own window, no
watermark moved) sat in its window until the stream went quiet; the idle close then published every window
holding data, the skewed one too, and the merger's "closed through" mark jumped to the end of that window. Every
later partial of the stream, a year's worth of windows, arrived "after close": no summary was ever published for
them (and, unknown to the merger, they were not even counted late). The independent computation is a plain loop
placing each record in its window.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import numpy as np
import polars as pl

from streams.validation.engine import compile_plan
from streams.windows.codec import decode, encode
from streams.windows.merger import WindowMerger
from streams.windows.stream import StreamConfig, StreamTime

from .helpers import LATENESS_MS, T0, WINDOW_MS, plan

NOW = T0 + 60_000
YEAR = 365 * 86_400_000
IDLE_MS = 5_000


class _Stream:
    def __init__(self) -> None:
        self.plan = plan()
        cfg = StreamConfig(WINDOW_MS, LATENESS_MS, idle_ms=IDLE_MS, max_skew_ms=300_000, unique_ms=3_600_000)
        self.time = StreamTime(self.plan, cfg, 1)
        so = self.plan.schema_obj
        self.merger = WindowMerger(self.plan.contract.id, so.name, so.topic, LATENESS_MS, IDLE_MS)
        self.offset = 0
        self.published: Counter[int] = Counter()

    def batch(self, ts: list[int], now: int) -> None:
        n, first = len(ts), self.offset
        stamps = [datetime.fromtimestamp(t / 1000, tz=UTC) for t in ts]
        df = pl.DataFrame(
            {
                "id": pl.Series(range(first, first + n), dtype=pl.Int64),
                "event_ts": pl.Series(stamps, dtype=pl.Datetime("us", "UTC")),
                "amount": [1.0] * n,
                "country": ["DE"] * n,
                "code": [f"c{i}" for i in range(first, first + n)],
            }
        )
        c = self.plan.contract
        out = self.time.process(
            c.validate(df), compile_plan(c).conform(df), np.zeros(n, dtype=np.int64), np.arange(first, first + n),
            np.zeros(n, dtype=np.int64), now_ms=now,
        )  # fmt: skip
        self.offset += n
        for record in out.records:
            self.merger.feed(decode(encode(record)))  # type: ignore[arg-type]
        self.time.settle(0, self.offset)

    def tick(self, now: int) -> None:
        for hb in self.time.heartbeats(now):
            self.merger.feed(hb)
        due = self.merger.due(now)
        if due:
            closed, _ = self.merger.close(due)
            for p in list(self.time.states):
                self.time.close_through(p, closed.through_ms)
        for window in due:
            assert window.key.start_ms not in self.published, "one summary per window"
            self.published[window.key.start_ms] += window.records


def test_an_idle_close_of_a_skewed_window_leaves_the_later_windows_open() -> None:
    s = _Stream()
    first = [T0 + 1_000, T0 + 2_000, T0 + YEAR, T0 + 3_000]
    s.batch(first, NOW)
    s.tick(NOW + 2 * IDLE_MS)  # the stream went quiet: every window holding data is published
    later = [T0 + 20_000 + i * 1_000 for i in range(60)]
    s.batch([*later[:30], T0 + YEAR + 5, *later[30:]], NOW + 20_000)  # one more in the published skewed window
    s.tick(NOW + 21_000)
    s.tick(NOW + 22_000 + 2 * IDLE_MS)  # quiet again: the rest is published
    expected = Counter(t - t % WINDOW_MS for t in first + later)
    assert s.published == expected
    # the record for the skewed window, published already, counts as late in a window published after it
    assert s.merger.stats.late_after_close == 1
