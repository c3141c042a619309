"""The demo's labels: the ground truth its producers send makes model 3.2.1 accurate and the collapsed 3.3.0 a coin
flip, and the demo's predictions contract joins them into exactly those accuracies per model version.

The expected accuracies are computed independently of the demo's code: model 3.2.1 is calibrated (its score is
the transaction's fraud probability ``p ~ Beta(1.2, 12)``, the generator's), so it is right with probability
``E[max(p, 1 - p)]`` (numerical integration with scipy); 3.3.0's scores do not depend on ``p`` and it predicts fraud
for half of the transactions, so it is right half of the time whatever the fraud rate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console
from scipy import integrate, stats

from streams.consumers.tracker import EventTracker
from streams.contracts.loader import load_contract
from streams.demo.labels import (
    DELAY_S,
    LABEL_SHARE,
    LABELS_TOPIC,
    LabelQueue,
    PendingLabel,
    label_record,
    produce_labels,
)
from streams.demo.producers import PREDICTIONS_TOPIC, ProducerStats, _clean_records, _payloads
from streams.demo.scenario import BASELINE_MODEL_VERSION, NEW_MODEL_VERSION, Incident, default_schedule
from streams.demo.view import live_view, performance_lines
from streams.events.codec import event_data, from_kafka, validate_event
from streams.performance.binding import join_spec
from streams.performance.joiner import PerformanceJoiner
from streams.pipeline.records import Message
from streams.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
T0 = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.UTC)
FRAUD_P = stats.beta(1.2, 12.0)  # streams.testing's score distribution: the transactions' fraud probability


def calibrated_accuracy() -> float:
    value, _ = integrate.quad(lambda p: max(p, 1 - p) * FRAUD_P.pdf(p), 0, 1, points=[0.5])
    return float(value)


def produced(n_per_version: int, *, seed: int = 3, tick: int = 100) -> tuple[list[tuple[float, bytes, dict[str, Any]]],
                                                                            list[PendingLabel]]:  # fmt: skip
    """The predictions the demo's producer sends (first ``n_per_version`` of 3.2.1, then as many while the confidence
    collapse is active), ``tick`` per 0.1 s from T0, as (send time, key, record); and the labels it owes."""
    rng, queue, stats_ = random.Random(seed), LabelQueue(seed=seed + 1), ProducerStats()
    collapse = [(0, Incident("confidence_collapse", 0.0, 1.0, topic="predictions"))]
    out: list[tuple[float, bytes, dict[str, Any]]] = []
    for i in range(2 * n_per_version // tick):
        now = T0 + dt.timedelta(seconds=0.1 * i)
        active = collapse if i * tick >= n_per_version else []
        records = _clean_records("predictions", tick, rng, stats_)
        payloads, _ = _payloads("predictions", records, active, rng, stats_, now, 0, queue)
        out += [(now.timestamp(), key or b"", orjson.loads(value)) for key, value in payloads]
    return out, queue.due(math.inf)


@pytest.fixture(scope="module")
def traffic() -> tuple[list[tuple[float, bytes, dict[str, Any]]], list[PendingLabel]]:
    return produced(20_000)


def test_the_truth_makes_the_calibrated_model_accurate_and_the_collapsed_one_a_coin_flip(traffic: Any) -> None:
    predictions, labels = traffic
    assert all(key == r["prediction_id"].encode() for _, key, r in predictions)  # keyed as their labels are
    by_id = {r["prediction_id"]: (t, r) for t, _, r in predictions}
    assert len(by_id) == len(predictions)
    right: dict[str, list[bool]] = defaultdict(list)
    fraud: dict[str, list[bool]] = defaultdict(list)
    scores: dict[str, list[float]] = defaultdict(list)
    for label in labels:
        t, r = by_id[label.prediction_id]
        assert DELAY_S[0] <= label.due - t <= DELAY_S[1]
        right[r["model_version"]].append((r["predicted_label"] == "fraud") == label.fraud)
        fraud[r["model_version"]].append(label.fraud)
        scores[r["model_version"]].append(r["score"])
    versions = Counter(r["model_version"] for _, _, r in predictions)
    assert versions == {BASELINE_MODEL_VERSION: 20_000, NEW_MODEL_VERSION: 20_000}

    def close(values: list[bool], expected: float, what: str) -> None:
        n, p = len(values), sum(values) / len(values)
        assert abs(p - expected) <= 4 * math.sqrt(expected * (1 - expected) / n), (what, p, expected, n)

    for version, n in versions.items():
        close([True] * len(right[version]) + [False] * (n - len(right[version])), LABEL_SHARE, f"labelled {version}")
        # the truth does not depend on the model that scored the transaction: the fraud rate is E[p] for both
        close(fraud[version], float(FRAUD_P.mean()), f"fraud rate {version}")
    close(right[BASELINE_MODEL_VERSION], calibrated_accuracy(), "accuracy of the calibrated model")
    close(right[NEW_MODEL_VERSION], 0.5, "accuracy of the collapsed model")
    # 3.2.1 is calibrated: the fraud rate of its labels is its mean score
    mean_score = sum(scores[BASELINE_MODEL_VERSION]) / len(scores[BASELINE_MODEL_VERSION])
    close(fraud[BASELINE_MODEL_VERSION], mean_score, "calibration of 3.2.1")
    assert calibrated_accuracy() > 0.9


def test_labels_are_sent_when_due_keyed_by_prediction_id() -> None:
    class Producer:
        def __init__(self) -> None:
            self.sent: list[tuple[str, bytes, bytes]] = []

        async def send(self, topic: str, *, value: bytes, key: bytes) -> None:
            self.sent.append((topic, key, value))

        async def flush(self) -> None:
            pass

    queue, producer, stats_ = LabelQueue(seed=1, share=1.0), Producer(), ProducerStats()
    now = dt.datetime.now(dt.UTC).timestamp()
    owed = [queue.observe(f"id-{i}", 0.5, now - 10 + i) for i in range(5)]
    assert len(queue) == 5
    owed_first = owed[0]
    assert owed_first is not None
    asyncio.run(produce_labels(producer, queue, stats_, done=lambda: True))
    assert len(queue) == 0 and stats_.sent["labels"] == 5
    assert [(t, k) for t, k, _ in producer.sent] == [(LABELS_TOPIC, f"id-{i}".encode()) for i in range(5)]
    first = orjson.loads(producer.sent[0][2])
    assert first == label_record(owed_first) and set(first) == {"prediction_id", "actual_label", "labelled_at"}
    when = dt.datetime.fromisoformat(first["labelled_at"].replace("Z", "+00:00")).timestamp()
    assert abs(when - owed_first.due) < 0.001 and first["actual_label"] in ("fraud", "legit")


def test_the_demo_contract_joins_the_labels_into_those_accuracies_per_model_version() -> None:
    """The demo's labels through the pure joiner with the demo's predictions contract and windows (10 s, lateness
    2 s), into the tracker: per model version, as many labelled and right predictions as joining by id by hand."""
    predictions, labels = produced(3_000, seed=11, tick=10)  # 30 s of each version
    settings = load_settings(window_seconds=10, allowed_lateness_seconds=2, window_idle_close_seconds=5)
    spec = join_spec(load_contract(ROOT / "contracts" / "fraud_predictions.odcs.yaml"), settings)
    assert (spec.predictions_topic, spec.labels.topic, spec.horizon_ms) == (PREDICTIONS_TOPIC, LABELS_TOPIC, 5_000)
    clock = [T0.timestamp()]
    joiner = PerformanceJoiner(spec, joiner_id="demo", events_topic="events", now=lambda: clock[0])
    joiner.assign({PREDICTIONS_TOPIC: [0], LABELS_TOPIC: [0]})
    feed = [(t, PREDICTIONS_TOPIC, orjson.dumps(r)) for t, _, r in predictions]
    feed += [(lab.due, LABELS_TOPIC, orjson.dumps(label_record(lab))) for lab in labels]
    feed.sort(key=lambda m: (m[0], m[1]))
    offsets: Counter[str] = Counter()
    out = []
    for t, topic, value in feed:
        clock[0] = t
        out += joiner.handle(Message(topic, 0, offsets[topic], value, None, (), round(t * 1000)))
        offsets[topic] += 1
    clock[0] += 3_600  # every partition idle: every window closes
    out += joiner.tick()
    tracker = EventTracker()
    for rec in out:
        event = from_kafka(rec.key, rec.value, rec.headers)
        validate_event(event)
        tracker.add(event.get_type(), event.get_id(), event_data(event))
    by_id = {r["prediction_id"]: r for _, _, r in predictions}
    want: dict[str, Counter[str]] = defaultdict(Counter)
    for r in by_id.values():
        want[r["model_version"]]["predictions"] += 1
    for lab in labels:
        r = by_id[lab.prediction_id]
        want[r["model_version"]]["labelled"] += 1
        want[r["model_version"]]["correct"] += (r["predicted_label"] == "fraud") == lab.fraud
    assert set(tracker.performance) == {BASELINE_MODEL_VERSION, NEW_MODEL_VERSION}  # no orphan label
    for version, w in want.items():
        got = tracker.performance[version]
        assert (got.labelled, got.correct, got.unmatched, got.orphans) == (
            w["labelled"], w["correct"], w["predictions"] - w["labelled"], 0
        ), version  # fmt: skip
    old, new = tracker.performance[BASELINE_MODEL_VERSION], tracker.performance[NEW_MODEL_VERSION]
    assert old.accuracy is not None and new.accuracy is not None and old.accuracy > 0.85 and new.accuracy < 0.6
    windows = Counter(s.detail for s in tracker.signals if s.kind == "performance")
    assert windows == {v: tracker.performance[v].windows for v in want} and min(windows.values()) >= 3
    console = Console(record=True, width=160)
    console.print(live_view(tracker, default_schedule(60), ProducerStats(), 30.0, 60.0, "mode gate"))
    shown = console.export_text()
    assert "realized performance (labels joined by prediction id)" in shown and f"{new.accuracy:.1%}" in shown
    lines = performance_lines(tracker)
    assert lines[0].startswith(f"realized performance, model {BASELINE_MODEL_VERSION}: {old.windows} window(s) judged")
    assert (
        f"accuracy {new.accuracy:.1%} of {new.labelled:,} labelled, {new.unmatched:,} unmatched, 0 orphan" in lines[1]
    )


def test_the_demo_skips_realized_performance_of_windows_before_the_run() -> None:
    """A reused broker keeps earlier runs' predictions and labels, which the joiner reads from the start: the
    windows that ended before this run are not the run's."""
    from streams.demo.run import _before

    since = round(T0.timestamp() * 1000)
    assert _before({"window": {"start": "2026-12-01T11:59:40Z", "end": "2026-12-01T11:59:50Z"}}, since)
    assert not _before({"window": {"start": "2026-12-01T11:59:55Z", "end": "2026-12-01T12:00:05Z"}}, since)
    assert not _before({"window": {"end": "not a time"}}, since) and not _before({}, since)
