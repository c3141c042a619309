"""Red-team pass 3: every window event the builders make, from generated verdicts, validates against its JSON
Schema *as a consumer reads it* (after ``to_kafka`` / ``from_kafka``), not only as built in memory: NaN and
infinities become null on the wire (orjson), so a schema field that refuses null would break there first.

Extremes: windows anywhere in the epoch-ms range (past the year 9999 and before year 1), NaN / inf / huge failure
rates and values, counts near 2**63, unicode (and NUL) in topic, schema, rule and field names.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contracts.model import Severity
from streams.events.codec import event_data, from_kafka, to_kafka, validate_event
from streams.events.types import EventType
from streams.events.window import window_summary, window_violations
from streams.validation.report import CheckResult
from streams.windows.finalize import SchemaDrift, WindowCheck, WindowVerdict
from streams.windows.partial import FieldTally, WindowKey
from streams.windows.plan import Evaluation
from tests.unit.events.test_events import _contract

CONTRACT = _contract()
_text = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12)  # no lone surrogates
_count = st.integers(0, 2**63 - 1)
_number = st.none() | st.floats() | st.integers(-(2**63), 2**63 - 1)
_rate = st.floats(0, 1) | st.just(math.nan) | st.just(math.inf)
_evidence = st.lists(st.tuples(st.integers(0, 2**31 - 1), st.integers(0, 2**63 - 1)), max_size=5).map(tuple)
_ms = st.integers(-(2**62), 2**62)


@st.composite
def _check(draw: st.DrawFn) -> WindowCheck:
    result = CheckResult(
        draw(_text), draw(st.none() | _text), draw(_text), draw(st.sampled_from(Severity)), draw(_count),
        draw(_rate), draw(st.booleans()), draw(_number), draw(_text), draw(st.none() | _text),
        gates_rows=True, error=draw(st.none() | _text),
    )  # fmt: skip
    return WindowCheck(result, draw(st.sampled_from(Evaluation)), draw(_evidence))


_tallies = st.dictionaries(_text, st.builds(FieldTally, st.integers(1, 2**63 - 1), _evidence), max_size=4)


@st.composite
def _verdict(draw: st.DrawFn) -> WindowVerdict:
    start = draw(_ms)
    key = WindowKey(CONTRACT.id, CONTRACT.version, CONTRACT.schemas[0].name, draw(_text), start,
                    start + draw(st.integers(1, 2**40)))  # fmt: skip
    ranges = st.lists(st.tuples(st.integers(0, 2**40), st.integers(0, 2**20)).map(lambda r: (r[0], r[0] + r[1])),
                      min_size=1, max_size=3).map(tuple)  # fmt: skip
    drift = draw(st.none() | st.builds(SchemaDrift, _tallies, _tallies, _tallies, st.lists(_text).map(tuple)))
    return WindowVerdict(
        key, CONTRACT.sha256, *(draw(_count) for _ in range(7)), tuple(draw(st.lists(_check(), max_size=4))),
        draw(st.dictionaries(st.integers(0, 2**31 - 1), ranges, min_size=1, max_size=3)), schema_drift=drift,
        newest_event_ms=draw(st.none() | _ms), closed_ms=draw(st.none() | _ms),
    )  # fmt: skip


def _on_the_wire(event: object) -> dict[str, object]:
    key, value, headers = to_kafka(event)  # type: ignore[arg-type]
    decoded = from_kafka(key, value, headers)
    validate_event(decoded)
    assert decoded.get_id() == event.get_id()  # type: ignore[attr-defined]
    assert key == CONTRACT.id.encode()  # every event of a contract on one partition, in order
    return event_data(decoded)


@settings(max_examples=200, deadline=None)
@given(verdict=_verdict())
def test_window_events_validate_as_consumers_read_them(verdict: WindowVerdict) -> None:
    summary = _on_the_wire(window_summary(CONTRACT, verdict, worker_id="w"))
    assert len(summary["checks"]) == len(verdict.checks)  # type: ignore[arg-type]
    violations = window_violations(CONTRACT, verdict, worker_id="w")
    assert len(violations) == sum(not c.result.passed for c in verdict.checks)
    assert all(_on_the_wire(v)["scope"] == "window" for v in violations)
    again = [e.get_id() for e in (window_summary(CONTRACT, verdict, worker_id="other"),
                                  *window_violations(CONTRACT, verdict, worker_id="other"))]  # fmt: skip
    assert again == [e.get_id() for e in (window_summary(CONTRACT, verdict, worker_id="w"), *violations)]


@settings(max_examples=100, deadline=None)
@given(verdict=_verdict())
def test_window_schema_drift_validates_as_consumers_read_it(verdict: WindowVerdict) -> None:
    from streams.events.drift import window_schema_drift

    event = window_schema_drift(CONTRACT, verdict, worker_id="w")
    assert (event is None) == (verdict.schema_drift is None)
    if event is not None:
        assert event.get_type() == EventType.SCHEMA_DRIFT
        assert set(_on_the_wire(event)["unknown_fields"]) == set(verdict.schema_drift.unknown)  # type: ignore
