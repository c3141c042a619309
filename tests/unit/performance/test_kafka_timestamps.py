"""A Kafka timestamp of -1 is Kafka's "no timestamp": the join treats it as a missing time (``bad_time``), as the
stream-time windows treat a record without a usable event time, never as the instant before the epoch."""

from __future__ import annotations

import orjson
import pytest

from streams.performance.binding import Label, Prediction, Skip, SkipReason, decode, join_spec
from streams.performance.joiner import PerformanceJoiner
from streams.pipeline.records import Message
from streams.settings import Settings
from tests.unit.performance.scenario import CONTRACT, LABELS, PREDICTIONS, T0, contract, label_record, prediction_record
from tests.unit.performance.test_joiner import Clock

# both times from the Kafka timestamp: no qstreams.eventTime, no labelTime
KAFKA_TIMES = CONTRACT.replace(", labelTime: labelled_at", "").replace(
    "      - property: qstreams.eventTime\n        value: predicted_at\n", ""
)


def _spec():  # type: ignore[no-untyped-def]
    spec = join_spec(contract(KAFKA_TIMES), Settings())
    assert spec.event_time is None and spec.labels.label_time is None  # the times are Kafka's
    return spec


@pytest.mark.parametrize("stamp", [-1, -5, None])
def test_a_record_without_a_kafka_timestamp_is_a_bad_time(stamp: int | None) -> None:
    spec = _spec()
    pred = Message(PREDICTIONS, 0, 0, orjson.dumps(prediction_record("a", T0, "A", 0.9, True)), None, (), stamp)
    label = Message(LABELS, 0, 0, orjson.dumps(label_record("a", T0, True)), None, (), stamp)
    assert decode(pred, spec) == Skip(SkipReason.BAD_TIME)
    assert decode(label, spec) == Skip(SkipReason.BAD_TIME)


def test_a_kafka_timestamp_at_or_after_the_epoch_is_the_records_time() -> None:
    spec = _spec()
    for stamp in (0, T0):
        pred = Message(PREDICTIONS, 0, 0, orjson.dumps(prediction_record("a", T0, "A", 0.9, True)), None, (), stamp)
        label = Message(LABELS, 0, 0, orjson.dumps(label_record("a", T0, False)), None, (), stamp)
        assert decode(pred, spec) == Prediction("a", stamp, "A", 0.9, True)
        assert decode(label, spec) == Label("a", stamp, False)


def test_records_without_a_timestamp_neither_join_nor_move_the_mark() -> None:
    clock = Clock()
    joiner = PerformanceJoiner(_spec(), joiner_id="j", events_topic="ev", now=clock)
    joiner.assign({PREDICTIONS: [0], LABELS: [0]})
    joiner.handle(Message(PREDICTIONS, 0, 0, orjson.dumps(prediction_record("a", T0, "A", 0.9, True)), None, (), -1))
    joiner.handle(Message(LABELS, 0, 0, orjson.dumps(label_record("a", T0, True)), None, (), -1))
    assert joiner.counters.skipped == {("predictions", "bad_time"): 1, ("labels", "bad_time"): 1}
    assert joiner.entries == {} and joiner.partials == {}
    assert all(c.max_event_ms is None for c in joiner.clocks.values())  # no watermark at -1 ms
    assert joiner.offsets == {(PREDICTIONS, 0): 1, (LABELS, 0): 1}  # consumed, not lost: counted as skipped
