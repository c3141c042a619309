"""The events of a window ending at 10000-01-01 (records stamped 9999-12-31T23:59:5x, a common sentinel) build.

Found by the red-team pass: the window's end became a Python datetime, which stops at the year 9999: building its
``window.summary`` raised ``ValueError: year 10000 is out of range``, the observer's tick failed before marking
the due windows published, and every tick after it published them again and failed again: no window of the
stream was ever closed. The end is now the last representable instant (9999-12-31T23:59:59.999999Z); the event
id still uses the exact end.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

from streams.events.window import window_summary, window_violations
from streams.validation.engine import compile_plan
from streams.windows.codec import Partial
from streams.windows.finalize import finalize
from streams.windows.partial import merge_all
from streams.windows.stream import StreamConfig, StreamTime
from tests.unit.windows.helpers import LATENESS_MS, T0, WINDOW_MS, plan


def test_the_last_window_before_the_year_10000_has_events() -> None:
    p = plan()
    st = StreamTime(p, StreamConfig(WINDOW_MS, LATENESS_MS, 5_000, 300_000, 3_600_000), 1)
    stamps = [datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)] * 2
    df = pl.DataFrame(
        {
            "id": pl.Series([1, 2], dtype=pl.Int64),
            "event_ts": pl.Series(stamps, dtype=pl.Datetime("us", "UTC")),
            "amount": [-1.0, 1.0],
            "country": ["DE", "DE"],
            "code": ["a", "b"],
        }
    )
    c = p.contract
    out = st.process(
        c.validate(df), compile_plan(c).conform(df), np.zeros(2, dtype=np.int64), np.arange(2),
        np.zeros(2, dtype=np.int64), now_ms=T0,
    )  # fmt: skip
    window = merge_all(r.partial for r in out.records if isinstance(r, Partial))
    assert window is not None
    verdict = finalize(p, window)
    summary = window_summary(c, verdict, worker_id="w")
    assert summary.get_data()["window"] == {"start": "9999-12-31T23:59:50Z", "end": "9999-12-31T23:59:59.999999Z"}
    assert summary.get_data()["records"] == 2
    assert any(e.get_data()["rule"]["name"] == "amount:minimum" for e in window_violations(c, verdict, worker_id="w"))
