"""A record stamped 9999-12-31 (a common "no end" sentinel) lands in its own window, counted once.

Found by the red-team pass: a batch's (window start, partition) pairs were packed into one int64 as
``start * 65536 + partition``; a window start after the year 6429 overflowed it, so the record's partial got a
window of the year 1080 and counted nothing: the record was in no window at all. The independent computation is
a plain loop placing each record in the window of its event time.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import numpy as np
import polars as pl

from streams.validation.engine import compile_plan
from streams.windows.codec import Partial
from streams.windows.stream import StreamConfig, StreamTime

from .helpers import LATENESS_MS, T0, WINDOW_MS, plan


def test_far_future_event_times_are_counted_in_their_window() -> None:
    p = plan()
    st = StreamTime(p, StreamConfig(WINDOW_MS, LATENESS_MS, 5_000, 300_000, 3_600_000), 3)
    stamps = [
        datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 58, tzinfo=UTC),
        datetime(1901, 1, 1, tzinfo=UTC),
    ]
    parts = np.array([0, 2, 2, 1, 1])
    df = pl.DataFrame(
        {
            "id": pl.Series(range(5), dtype=pl.Int64),
            "event_ts": pl.Series(stamps, dtype=pl.Datetime("us", "UTC")),
            "amount": [1.0, -1.0, 1.0, 1.0, 1.0],  # the second fails amount:minimum
            "country": ["DE"] * 5,
            "code": ["a", "a", "b", "a", "c"],  # two in the far window: a duplicate there
        }
    )
    out = st.process(
        p.contract.validate(df), compile_plan(p.contract).conform(df), parts, np.arange(5), np.zeros(5, dtype=np.int64),
        now_ms=T0 + 20_000,
    )  # fmt: skip
    got = Counter()
    minimum = Counter()
    for r in out.records:
        if isinstance(r, Partial):
            got[(r.partial.key.start_ms, r.partition)] += r.partial.records
            minimum[r.partial.key.start_ms] += r.partial.rules.get("amount:minimum", None) is not None
    ms = [int(s.timestamp() * 1000) for s in stamps]
    expected = Counter((t - t % WINDOW_MS, int(q)) for t, q in zip(ms, parts, strict=True))
    assert got == expected
    far = ms[1] - ms[1] % WINDOW_MS
    assert minimum[far] == 1
