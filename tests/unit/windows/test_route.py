"""The routing verdict on the stream: stream uniqueness replaces the engine's in-batch uniqueness."""

from __future__ import annotations

import numpy as np

from streams.validation.engine import compile_plan
from streams.windows.route import EVENT_TIME_RULE, amend
from streams.windows.stream import StreamConfig, StreamTime

from .helpers import T0, frame, plan


def test_amended_report_routes_by_the_stream() -> None:
    p = plan()
    st = StreamTime(p, StreamConfig(10_000, 2_000, 5_000, 3_600_000, 3_600_000), partitions=1)
    first = frame([1, 2], [T0, T0 + 1], [1.0, 2.0], ["DE", "DE"], ["a", "b"])
    second = frame([1, 3, 3], [T0 + 2, T0 + 3, T0 + 4], [1.0, 2.0, 3.0], ["DE", "DE", "DE"], ["c", "d", "e"])
    conformed = compile_plan(p.contract).conform
    for df, offsets in ((first, [0, 1]), (second, [2, 3, 4])):
        report = p.contract.validate(df)
        out = st.process(report, conformed(df), np.zeros(df.height, dtype=np.int64), np.array(offsets),
                         np.zeros(df.height, dtype=np.int64), now_ms=T0 + 10)  # fmt: skip
        amended = amend(report, p, out.valid, out.unique_fails, out.bad_time)
    # the engine quarantines both 3s (in-batch duplicates) and passes the 1 (seen in another batch)
    assert report.valid_mask.to_list() == [True, False, False]
    assert amended.valid_mask.to_list() == [False, True, False]
    assert amended.violations.to_list() == [["id:unique"], [], ["id:unique"]]
    assert (amended.valid_rows, amended.invalid_rows) == (1, 2)


def test_records_without_event_time_fail_the_event_time_rule() -> None:
    p = plan()
    st = StreamTime(p, StreamConfig(10_000, 2_000, 5_000, 3_600_000, 3_600_000), partitions=1)
    df = frame([1, 2], [T0, T0], [1.0, 2.0], ["DE", "DE"], ["a", "b"])
    df = df.with_columns(event_ts=df["event_ts"].set(df["id"] == 2, None))  # type: ignore[arg-type]
    report = p.contract.validate(df)
    conformed = compile_plan(p.contract).conform(df)
    out = st.process(report, conformed, np.zeros(2, dtype=np.int64), np.array([0, 1]), np.array([T0, T0]), now_ms=T0)
    amended = amend(report, p, out.valid, out.unique_fails, out.bad_time)
    assert out.bad_time.tolist() == [False, True] and amended.valid_mask.to_list() == [True, False]
    assert EVENT_TIME_RULE in amended.violations.to_list()[1]
