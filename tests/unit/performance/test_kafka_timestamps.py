"""A Kafka timestamp of -1 is Kafka's "no timestamp": the join treats it as a missing time (``bad_time``), as the
stream-time windows treat a record without a usable event time, never as the instant before the epoch."""

from __future__ import annotations

import orjson
import pytest

from streams.formats.decoder import MessageDecoder
from streams.performance.binding import JoinSpec, Label, Prediction, Skip, SkipReason, join_spec, records
from streams.performance.joiner import PerformanceJoiner
from streams.pipeline.records import Message
from streams.settings import Settings
from tests.unit.performance.scenario import (
    CONTRACT,
    LABELS,
    PREDICTIONS,
    T0,
    WINDOW_MS,
    contract,
    label_record,
    prediction_record,
)
from tests.unit.performance.test_join_cases import Feed
from tests.unit.performance.test_joiner import Clock

# both times from the Kafka timestamp: no qstreams.eventTime, no labelTime
KAFKA_TIMES = CONTRACT.replace(", labelTime: labelled_at", "").replace(
    "      - property: qstreams.eventTime\n        value: predicted_at\n", ""
)


def decode(msg: Message, spec: JoinSpec) -> Prediction | Label | Skip:
    """The one record of a one-record message, read as the joiner reads it."""
    (one,) = records(msg, spec, MessageDecoder(spec.contract.schema(spec.schema)))
    return one


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


def test_a_window_without_labelled_predictions_has_no_label_delay_not_a_zero_one() -> None:
    f = Feed()
    f.pred("never", 5, 0.9)  # never labelled: the window has an unmatched prediction and a pair
    f.pred("pair", 5, 0.2)
    f.label("pair", 7, False)
    f.pred("alone", 65, 0.7)  # the next window: only an unmatched prediction
    got = f.finish()  # every event validated against its JSON Schema
    first, second = got[(T0, "A")], got[(T0 + WINDOW_MS, "A")]
    assert first["label_delay"] == {"count": 1, "mean_seconds": 2.0, "max_seconds": 2.0}
    assert second["count"] == 0 and second["unmatched_predictions"] == 1
    assert second["label_delay"] == {"count": 0, "mean_seconds": None, "max_seconds": None}
    assert second["accuracy"] is None and second["roc_auc"] is None and second["calibration_error"] is None
