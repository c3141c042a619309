"""Schema drift per window is the same whether the records arrive as JSON objects or as Arrow IPC tables: the
same counts and the same first offending offsets in the window's ``schema.drift`` event."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from .helpers import T0
from .test_window_schema_drift import schema_drift_events as json_schema_drift_events


def record(ident: int, at: int, **change: Any) -> dict[str, Any]:
    ts = datetime.fromtimestamp((T0 + at) / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
    out = {"id": ident, "event_ts": ts, "amount": 5.0, "country": "DE", "code": f"c{ident}"} | change
    return {k: v for k, v in out.items() if v is not ...}


def as_json(rows: list[dict[str, Any]]) -> bytes:
    (row,) = rows
    return orjson.dumps(row)


def as_arrow(rows: list[dict[str, Any]]) -> bytes:
    table = pa.Table.from_pylist(rows)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


# (partition, records of one message); window 0 (0-10 s) drifts, window 1 (10-20 s) does not
PLAN = [
    (0, [record(1, 1_000)]),
    (0, [record(2, 1_500, extra="x")]),  # p0 o1: undeclared "extra"
    (3, [record(3, 2_000, extra="y", more=1)]),  # p3 o0: undeclared "extra" and "more"
    (3, [record(4, 2_500, country=...)]),  # p3 o1: "country" missing
    (0, [record(5, 3_000, amount="abc")]),  # p0 o2: amount of another type
    (0, [record(6, 3_500, extra="z", country=...)]),  # p0 o3: both
    *((p, [record(10 + i, 11_000 + i * 100)]) for i, p in enumerate([0, 3, 0, 3])),
]


def schema_drift_events(plan: list[tuple[int, list[dict[str, Any]]]], encode: Callable[..., bytes]) -> list[dict]:
    return json_schema_drift_events([(part, encode(rows)) for part, rows in plan])


KEYS = ("window", "records", "unknown_fields", "missing_fields", "never_present", "type_mismatches", "first_offending")


def test_json_and_arrow_encodings_of_the_same_records_give_the_same_window_schema_drift() -> None:
    [js] = schema_drift_events(PLAN, as_json)
    [ar] = schema_drift_events(PLAN, as_arrow)
    assert {k: ar[k] for k in KEYS} == {k: js[k] for k in KEYS}
    assert ar["unknown_fields"] == {"extra": 3, "more": 1} and ar["missing_fields"] == {"country": 2}
    assert ar["first_offending"]["missing_fields"]["country"] == [
        {"partition": 0, "offset": 3},
        {"partition": 3, "offset": 1},
    ]


def test_an_arrow_table_of_n_rows_is_n_records_in_the_window_at_its_offset() -> None:
    lacking = [record(20 + i, 1_000 + i * 10, country=...) for i in range(5)]
    extra = [record(30 + i, 2_000 + i * 10, promo="x") for i in range(3)]
    clean = [record(40 + i, 11_000 + i * 10) for i in range(2)]
    [d] = schema_drift_events([(0, [record(1, 500)]), (0, lacking), (3, extra), (0, clean)], as_arrow)
    assert d["records"] == 9 and d["missing_fields"] == {"country": 5} and d["unknown_fields"] == {"promo": 3}
    assert d["first_offending"]["missing_fields"]["country"] == [{"partition": 0, "offset": 1}]
    assert d["first_offending"]["unknown_fields"]["promo"] == [{"partition": 3, "offset": 0}]
