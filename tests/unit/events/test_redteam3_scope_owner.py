"""Red-team pass 3: every event about records says its scope, whom to call and which records.

Found: ``distribution.drift`` and ``prediction.confidence`` (the events a retraining or rollback automation and
on-call act on) carried neither ``owner`` nor the records' ``offsets``, and no ``scope``; ``model.performance``
no ``owner``; ``schema.drift`` came in a batch form and a window form (both published, for the same records, with
``STREAMS_BATCH_EVENTS=true``) that only the presence of ``first_offending`` told apart, so a consumer adding
them up counted each drifted record twice. They now carry ``scope`` (``batch`` / ``window``), ``owner`` and
(window events) ``offsets``, declared in their schemas (optional: events of earlier workers lack them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from streams.events import event_data, from_kafka, to_kafka, validate_event
from streams.events.drift import window_drift_events, window_schema_drift
from streams.windows.finalize import SchemaDrift, WindowVerdict, finalize
from streams.windows.partial import FieldTally, WindowKey, merge
from tests.unit.events.test_events import _contract, _drift
from tests.unit.windows.test_window_confidence import partial, setup


def _read(event: object) -> dict[str, object]:
    key, value, headers = to_kafka(event)  # type: ignore[arg-type]
    decoded = from_kafka(key, value, headers)
    validate_event(decoded)
    return event_data(decoded)


def test_drift_and_confidence_events_carry_scope_owner_and_offsets(tmp_path: Path) -> None:
    contract, monitor, plan, reference = setup(tmp_path)
    rng = np.random.default_rng(5)
    frame = pl.concat([reference.sample(600, seed=1), reference.sample(200, seed=2).with_columns(
        pl.Series("score", rng.uniform(0.4, 0.6, 200)))], how="vertical_relaxed")  # fmt: skip
    merged = merge(partial(contract, plan, frame[:500], monitor, 0), partial(contract, plan, frame[500:], monitor, 3))
    events = window_drift_events(contract, finalize(plan, merged, monitor))  # type: ignore[arg-type]
    kinds = {e.get_type() for e in events}
    assert {"io.qualitystreams.distribution.drift.v1", "io.qualitystreams.prediction.confidence.v1"} <= kinds
    for event in events:
        data = _read(event)
        assert data["scope"] == "window"
        assert data["owner"] == contract.owner.as_dict()  # type: ignore[attr-defined]
        assert data["offsets"] == [{"partition": 0, "first": 0, "last": 499}, {"partition": 3, "first": 0, "last": 299}]


def test_the_two_forms_of_schema_drift_say_their_scope() -> None:
    c = _contract()
    assert _read(_drift(c, unknown={"promo": 2}))["scope"] == "batch"
    key = WindowKey(c.id, c.version, c.schemas[0].name, "t", 0, 60_000)
    verdict = WindowVerdict(key, c.sha256, 3, 3, 3, 0, 0, 0, 0, (), {0: ((1, 3),)},
                            schema_drift=SchemaDrift({"promo": FieldTally(2, ((0, 1),))}, {}, {}, ()))  # fmt: skip
    assert _read(window_schema_drift(c, verdict, worker_id="w"))["scope"] == "window"


def test_model_performance_names_the_owner() -> None:
    from streams.events.performance import model_performance
    from streams.profiles.performance import PerformancePartial

    c = _contract()
    so = c.schemas[0]
    tally = PerformancePartial(8, 1, 9, 2, (0,) * 9 + (10,), (10,) + (0,) * 9, (0,) * 10)
    event = model_performance(c, so.name, so.topic, 0, 60_000, "v1", tally, labels_topic="labels", horizon_ms=1_000)
    data = _read(event)
    assert (data["scope"], data["owner"]) == ("window", c.owner.as_dict())
