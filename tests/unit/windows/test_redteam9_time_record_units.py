"""Red team 9: the labels join's event time of a ``timestamp(ns)`` property is the worker's, at the unit's edges.

``record_time_ms`` reads common ISO shapes by a regular expression and leaves the rest to the engine. For a
``timestamp(ns)`` property it read text beyond the nanosecond range (``2400-01-01T00:00:00Z``, a "no end"
sentinel such as ``9999-12-31``) as that instant, while the worker finds no event time there (the value fails
``dtype``): the join placed a prediction in a window the worker never counted it in. The oracle is the worker's
own reading of the record alone in its batch (decoder, conformance, ``event_times``), as
``tests/unit/windows/test_record_time.py`` has it; in-range values are also checked against Python's datetime.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import orjson
import pytest

from streams.contracts.loader import parse_contract
from streams.formats.decoder import Decoder, Value
from streams.validation.engine import compile_plan
from streams.windows.clock import event_times
from streams.windows.record_time import record_time_ms

ZONES = {"naive": "{}", "utc": "{timezone: true}", "paris": "{timezone: true, defaultTimezone: Europe/Paris}"}
TEXTS = [
    "2400-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999Z",
    "2300-01-01T00:00:00",
    "2262-04-11T23:47:16.854775807Z",
    "2262-04-11T23:47:16.854775808Z",
    "2262-04-12T00:00:00+01:00",
    "2262-04-11",
    "1677-09-21T00:12:43.145224192Z",
    "1677-09-21T00:12:43.145224191Z",
    "1600-01-01T00:00:00Z",
    "2261-12-31T23:00:00-05:00",
    "1678-01-01T01:00:00+02:00",
    "2024-06-01T00:00:00.123456789Z",
]


def _worker_ms(zone: str, value: str) -> tuple[int | None, object]:
    text = f"""\
apiVersion: v3.1.0
kind: DataContract
id: urn:redteam9:record-ns
version: 1.0.0
status: draft
schema:
  - name: events
    customProperties:
      - {{property: qstreams.eventTime, value: at}}
    properties:
      - name: at
        logicalType: timestamp
        physicalType: timestamp(ns)
        logicalTypeOptions: {ZONES[zone]}
"""
    contract = parse_contract(text, "t.odcs.yaml")
    obj = contract.schemas[0]
    decoded = Decoder(obj).decode([Value(orjson.dumps({"at": value}))])
    conformed = compile_plan(contract, "events").conform(decoded.frame)
    times = event_times(conformed, "at", np.full(1, -1, dtype=np.int64))
    return (None if bool(times.bad[0]) else int(times.ms[0])), obj.field("at").dtype


@pytest.mark.parametrize("zone", list(ZONES))
@pytest.mark.parametrize("text", TEXTS)
def test_the_join_reads_a_nanosecond_event_time_as_the_worker(zone: str, text: str) -> None:
    worker, dtype = _worker_ms(zone, text)
    assert record_time_ms(text, dtype) == worker
    if text[-1] == "Z" and text[:4] in ("2024", "2262") and text != "2262-04-11T23:47:16.854775808Z":
        instant = dt.datetime.fromisoformat(text[:23] + "+00:00")  # Python reads to the millisecond here
        assert worker == (instant - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)
