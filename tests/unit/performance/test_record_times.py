"""The labels join reads a record's time as the worker reads its event time (``streams.windows.record_time``): what
the worker refuses is a ``bad_time`` here too (counted, never a crash), and naive text is read in the event-time
property's zone (a label time, on a topic no contract types, is ISO-8601 text or epoch ms). Before, the join read
a prediction time's epoch-ms numbers and Python's ISO-8601 (an hour alone, week dates) that the
worker's event time refuses, and naive text as UTC whatever the property's zone: a prediction counted in a window
two hours away from the worker's window of the same record."""

from __future__ import annotations

import numpy as np
import pytest

from streams.performance.binding import join_spec
from streams.performance.joiner import PerformanceJoiner
from streams.settings import Settings
from tests.unit.performance.scenario import CONTRACT, LABELS, PREDICTIONS, T0, contract, label_record
from tests.unit.performance.scenario import prediction_record as record
from tests.unit.performance.test_join_cases import Feed
from tests.unit.windows.test_record_time import worker_ms

PARIS = CONTRACT.replace(
    "      - name: predicted_at\n        logicalType: timestamp\n",
    "      - name: predicted_at\n        logicalType: timestamp\n"
    "        logicalTypeOptions: {timezone: true, defaultTimezone: Europe/Paris}\n",
)


@pytest.mark.parametrize("when", [T0, float(T0), "2024-06-01T03", "2024-W22-6", "20240601T000000Z"])
def test_a_prediction_time_the_worker_refuses_is_a_bad_time_in_the_join(when: object) -> None:
    assert worker_ms("naive", when) is None  # the worker's event time: none (quarantined, rule event_time)
    f = Feed()
    f.send(PREDICTIONS, record("p", T0, "A", 0.9, True) | {"predicted_at": when})
    f.pred("ok", 0, 0.9)
    f.label("ok", 1, True)
    assert f.joiner.counters.skipped == {("predictions", "bad_time"): 1}
    assert set(f.joiner.entries) == {"ok"}
    got = f.finish()
    assert got[(T0, "A")]["count"] == 1 and got[(T0, "A")]["unmatched_predictions"] == 0


@pytest.mark.parametrize("when", ["2024-06-01T03", "2024-W22-6", "20240601T000000Z", True, "", [T0]])
def test_a_label_time_not_iso_text_nor_epoch_ms_is_a_bad_time(when: object) -> None:
    f = Feed()
    f.send(LABELS, label_record("q", T0, True) | {"labelled_at": when})
    assert f.joiner.counters.skipped == {("labels", "bad_time"): 1}


@pytest.mark.parametrize("when", [T0 + 5_000, float(T0 + 5_000), "2024-06-01T00:00:05Z", "2024-06-01T00:00:05"])
def test_a_label_time_is_iso_text_or_epoch_ms(when: object) -> None:
    """The labels topic is typed by no contract: its time is ISO-8601 (naive text is UTC) or epoch milliseconds,
    as documented for ``labelTime``, all four the same instant here."""
    f = Feed()
    f.send(PREDICTIONS, record("p", T0, "A", 0.9, True))
    f.send(LABELS, label_record("p", T0, True) | {"labelled_at": when})
    assert f.joiner.counters.skipped == {}
    got = f.finish()
    assert got[(T0, "A")]["count"] == 1 and got[(T0, "A")]["label_delay"]["max_seconds"] == 5.0


def test_naive_text_is_read_in_the_zone_of_the_event_time_property() -> None:
    assert PARIS != CONTRACT
    f = Feed()
    f.joiner = PerformanceJoiner(join_spec(contract(PARIS), Settings()), joiner_id="j", events_topic="ev", now=f.clock)
    f.joiner.assign({PREDICTIONS: [0], LABELS: [0]})
    naive = "2024-06-01T02:00:30"  # 00:00:30 UTC in Paris (CEST, +02:00)
    assert worker_ms("paris", naive) == T0 + 30_000
    f.send(PREDICTIONS, record("p", T0, "A", 0.9, True) | {"predicted_at": naive})
    f.send(LABELS, label_record("p", T0 + 40_000, True))  # a label time has no declared zone: Z here
    got = f.finish()
    assert set(got) == {(T0, "A")}  # the worker's window of the record, not 02:00 UTC's
    assert got[(T0, "A")]["count"] == 1 and got[(T0, "A")]["label_delay"]["max_seconds"] == 10.0
    assert np.isclose(got[(T0, "A")]["accuracy"], 1.0)
