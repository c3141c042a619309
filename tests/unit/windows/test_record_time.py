"""One record's event time read by the labels join (``streams.windows.record_time.record_time_ms``) is the worker's
reading of it: the record decoded, conformed and timed as a batch of the worker is (``Decoder``, the engine's
conformance, ``event_times``), for a timestamp property without a zone, in UTC, in a zone with DST, in milliseconds,
and a date property. The join read epoch-ms numbers, ISO-8601 shapes the engine refuses (an hour alone, the basic
format, week dates) and naive text as UTC whatever the property's zone."""

from __future__ import annotations

import numpy as np
import orjson
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contracts.loader import parse_contract
from streams.formats.decoder import Decoder, Value
from streams.validation.engine import compile_plan
from streams.windows.clock import event_times
from streams.windows.record_time import record_time_ms

PROPERTIES = {
    "naive": "logicalType: timestamp",
    "utc": "logicalType: timestamp\n        logicalTypeOptions: {timezone: true}",
    "paris": "logicalType: timestamp\n        logicalTypeOptions: {timezone: true, defaultTimezone: Europe/Paris}",
    "millis": "logicalType: timestamp\n        physicalType: timestamp(3)",
    "date": "logicalType: date",
}


def _contract(kind: str) -> str:
    return f"""\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:times
version: 1.0.0
status: draft
schema:
  - name: events
    physicalName: events.v1
    customProperties:
      - {{property: qstreams.eventTime, value: at}}
    properties:
      - name: at
        {PROPERTIES[kind]}
"""


_READERS: dict[str, tuple[Decoder, object, pl.DataType]] = {}


def worker_ms(kind: str, value: object) -> int | None:
    """The worker's event time of a record ``{"at": value}`` alone in its batch (None: no event time)."""
    if kind not in _READERS:
        obj = parse_contract(_contract(kind), "t.odcs.yaml").schemas[0]
        _READERS[kind] = (Decoder(obj), compile_plan(parse_contract(_contract(kind), "t.odcs.yaml"), "events"),
                          obj.field("at").dtype)  # fmt: skip
    decoder, plan, _ = _READERS[kind]
    decoded = decoder.decode([Value(orjson.dumps({"at": value}))])
    conformed = plan.conform(decoded.frame)  # type: ignore[attr-defined]
    times = event_times(conformed, "at", np.full(1, -1, dtype=np.int64))
    return None if bool(times.bad[0]) else int(times.ms[0])


def join_ms(kind: str, value: object) -> int | None:
    worker_ms(kind, None)
    return record_time_ms(value, _READERS[kind][2])


@pytest.mark.parametrize("kind", sorted(PROPERTIES))
@pytest.mark.parametrize(
    "value",
    [
        "2024-06-01T00:00:00Z", "2024-06-01T00:00:00.9996Z", "2024-06-01T00:00:59.999999+00:00", "2024-06-01",
        "2024-06-01T00:00:00", "2024-06-01 00:00", "2024-06-01T00:00:00+02:00", "2024-06-01T00:00:00+0200",
        "2024-06-01T00:00:00+02", "2024-03-31T02:30:00", "2024-10-27T02:30:00", "2024-06-01T03", "20240601T000000Z",
        "2024-W22-6", "2024-06-01t00:00:00z", " 2024-06-01T00:00:00Z", "1969-12-31T23:59:59.9995Z",
        "9999-12-31T23:59:59.999Z", "2024-02-30", "2024-06-01T24:00:00", "2024-06-01T23:59:60Z", "x", "",
        1717200000000, 1717200000000.5, 1.7e12, True, None,
    ],
)  # fmt: skip
def test_the_join_reads_a_time_as_the_worker_does(kind: str, value: object) -> None:
    assert join_ms(kind, value) == worker_ms(kind, value)


def test_what_the_join_used_to_read_the_worker_refuses() -> None:
    # the old reading: epoch ms numbers, Python's fromisoformat (hour alone, basic format, week dates), naive as UTC
    for value in (1717200000000, "2024-06-01T03", "20240601T000000Z", "2024-W22-6"):
        assert worker_ms("naive", value) is None and join_ms("naive", value) is None
    assert join_ms("paris", "2024-06-01T00:00:00") == worker_ms("paris", "2024-06-01T00:00:00") == 1717192800000


_digits = st.integers(0, 99).map(lambda n: f"{n:02d}")
_stamps = st.builds(
    lambda y, mo, d, sep, h, mi, sec, frac, zone: f"{y:04d}-{mo}-{d}{sep}{h}:{mi}{sec}{frac}{zone}",
    st.sampled_from([1, 1969, 1970, 2000, 2024, 2038, 9999]),
    st.integers(0, 13).map(lambda n: f"{n:02d}"), st.integers(0, 32).map(lambda n: f"{n:02d}"),
    st.sampled_from(["T", " ", "t", "  "]), st.integers(0, 25).map(lambda n: f"{n:02d}"), _digits,
    st.one_of(st.just(""), _digits.map(lambda s: ":" + s)),
    st.one_of(st.just(""), st.text("0123456789", min_size=0, max_size=12).map(lambda s: "." + s)),
    st.one_of(st.sampled_from(["", "Z", "z", " Z", "+00:00", "-00:00"]),
              st.builds(lambda s, h, m: f"{s}{h}:{m}", st.sampled_from("+-"), _digits, _digits),
              st.builds(lambda s, h, m: f"{s}{h}{m}", st.sampled_from("+-"), _digits, _digits)),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(sorted(PROPERTIES)), value=st.one_of(_stamps, _stamps.map(lambda s: s[:10])))
def test_any_text_time_is_read_by_the_join_as_by_the_worker(kind: str, value: str) -> None:
    assert join_ms(kind, value) == worker_ms(kind, value)
