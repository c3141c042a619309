"""The demo's quality-event reader folds each record on its own: a record it cannot read raises out of
:func:`streams.demo.run._fold` (the reader's loop catches that and goes on), and a quality event is counted.

Found by the consumers red team: the reader called ``event_data`` outside its ``try``, so a record with
CloudEvents headers whose value is not JSON (or whose data is not an object) ended the demo's event reader.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from streams.consumers.tracker import EventTracker
from streams.demo.run import _fold
from streams.demo.view import DriftWindows
from streams.events.codec import to_kafka
from tests.unit.events.test_events import _contract, _report, _summary


@dataclass
class Rec:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


NOW = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)


def _summary_record(value: bytes | None = None) -> Rec:
    key, data, headers = to_kafka(_summary(_contract(), _report(_contract())))
    return Rec(key, data if value is None else value, list(headers))


def test_a_quality_event_is_folded_into_the_tracker() -> None:
    tracker, drift = EventTracker(), DriftWindows()
    _fold(_summary_record(), tracker, drift, NOW, since_ms=0)
    assert sum(tracker.totals().values()) > 0


@pytest.mark.parametrize("value", [b"\xff not json", b"[1, 2]", b'"text"'])
def test_a_record_whose_data_no_consumer_reads_raises_for_the_loop_to_skip(value: bytes) -> None:
    tracker, drift = EventTracker(), DriftWindows()
    with pytest.raises(Exception):  # noqa: B017 - any error: the loop skips the record, whatever it is
        _fold(_summary_record(value), tracker, drift, NOW, since_ms=0)
    assert not tracker.totals()
