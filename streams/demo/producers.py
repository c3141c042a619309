"""Demo producers: realistic feature and prediction traffic at a steady rate, with incidents.

Used by ``qstreams demo`` and by ``qstreams produce`` (the Compose producers). Features are keyed by
event id, predictions by prediction id (the key of their labels, :mod:`streams.demo.labels`).
Records come from :mod:`streams.testing`'s generators; while an incident is active
its mutator changes a share of them, or its garbage source replaces them with
undecodable bytes. Every produced record is counted, per incident too, so the
summary can compare what was injected with what was reported.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.demo.labels import LabelQueue
from streams.demo.scenario import Incident
from streams.testing import generate_feature_records, generate_prediction_records

__all__ = ["FEATURES_TOPIC", "PREDICTIONS_TOPIC", "ProducerStats", "produce"]

FEATURES_TOPIC = "features.card-transactions.v1"
PREDICTIONS_TOPIC = "predictions.card-fraud.v1"
TICK_S = 0.1


@dataclass
class ProducerStats:
    """What a producer sent: totals and, per incident, the affected records and the wall-clock window."""

    sent: Counter[str] = field(default_factory=Counter)  # per stream: features / predictions
    injected: Counter[int] = field(default_factory=Counter)  # incident index -> affected records
    windows: dict[int, tuple[dt.datetime, dt.datetime]] = field(default_factory=dict)
    recent_event_ids: list[str] = field(default_factory=list)  # predictions refer to recent features
    last_sent: dict[str, dt.datetime] = field(default_factory=dict)  # per stream: when its last record was sent

    def mark(self, index: int, now: dt.datetime) -> None:
        start, _ = self.windows.get(index, (now, now))
        self.windows[index] = (start, now)


def _clean_records(stream: str, n: int, rng: random.Random, stats: ProducerStats) -> list[dict[str, Any]]:
    seed = rng.randrange(2**31)
    moment = dt.datetime.now(dt.UTC)
    now = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if stream == "features":
        records = generate_feature_records(n, seed=seed).records
        for r in records:
            r["event_ts"] = now
            r["hour_of_day"] = moment.hour  # a feature of the event time, as a feature pipeline computes it
        stats.recent_event_ids = [str(r["event_id"]) for r in records][-200:] or stats.recent_event_ids
        return records
    records = generate_prediction_records(n, seed=seed).records
    for r in records:
        r["predicted_at"] = now
        if stats.recent_event_ids:
            r["event_id"] = rng.choice(stats.recent_event_ids)  # predictions follow the features they score
    return records


def _payloads(
    stream: str,
    records: list[dict[str, Any]],
    active: Sequence[tuple[int, Incident]],
    rng: random.Random,
    stats: ProducerStats,
    now: dt.datetime,
    garbage_n: int,
    labels: LabelQueue | None = None,
) -> tuple[list[tuple[bytes | None, bytes]], int]:
    """The Kafka (key, value) of clean ``records`` of ``stream`` once the ``active`` incidents changed a share of
    them (and the count of garbage payloads sent so far). Features are keyed by event id, predictions by
    prediction id (their labels are too: co-partitioned topics); ``labels`` owes a label per decodable
    prediction, drawn from the clean record's score (the transaction's fraud probability, see
    :mod:`streams.demo.labels`) whatever an incident made of the prediction."""
    payloads: list[tuple[bytes | None, bytes]] = []
    id_field = "event_id" if stream == "features" else "prediction_id"
    for record in records:
        pid = str(record.get(id_field) or "")
        score = record.get("score")  # the clean record's: the transaction's fraud probability
        truth = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None
        key = pid.encode() or None
        value: bytes | None = None
        for i, inc in active:
            spec = inc.spec
            if rng.random() >= spec.rate:
                continue
            stats.injected[i] += 1
            stats.mark(i, now)
            if spec.garbage is not None:
                value = spec.garbage(garbage_n, rng)
                garbage_n += 1
            elif spec.mutate is not None:
                record = spec.mutate(record, rng)
        if labels is not None and stream == "predictions" and value is None and pid and truth is not None:
            labels.observe(pid, truth, now.timestamp())
        payloads.append((key, value if value is not None else orjson.dumps(record)))
    return payloads, garbage_n


async def produce(
    producer: Any,
    stream: str,
    *,
    rate: float,
    duration_s: float | None,
    incidents: Sequence[Incident] = (),
    stats: ProducerStats,
    seed: int = 7,
    started: float | None = None,
    cycle_s: float | None = None,
    labels: LabelQueue | None = None,
) -> None:
    """Send ``rate`` records/s of ``stream`` (features | predictions) with an aiokafka producer.

    ``duration_s`` None runs until cancelled; ``cycle_s`` repeats the incident schedule; ``labels`` (predictions)
    is told of every prediction sent, to owe its label (:func:`streams.demo.labels.produce_labels` sends them).
    """
    topic = FEATURES_TOPIC if stream == "features" else PREDICTIONS_TOPIC
    mine = [(i, inc) for i, inc in enumerate(incidents) if inc.topic == stream]
    rng = random.Random(seed)
    t0 = started if started is not None else time.monotonic()
    owed = 0.0
    garbage_n = 0
    tick = 0
    while True:
        elapsed = time.monotonic() - t0
        if duration_s is not None and elapsed >= duration_s:
            break
        owed += rate * TICK_S
        n, owed = int(owed), owed - int(owed)
        in_cycle = elapsed % cycle_s if cycle_s else elapsed
        active = [(i, inc) for i, inc in mine if inc.active(in_cycle)]
        now = dt.datetime.now(dt.UTC)
        records = _clean_records(stream, n, rng, stats) if n else []
        payloads, garbage_n = _payloads(stream, records, active, rng, stats, now, garbage_n, labels)
        for key, value in payloads:
            await producer.send(topic, value=value, key=key)
        stats.sent[stream] += len(payloads)
        if payloads:
            stats.last_sent[stream] = now
        tick += 1
        next_at = t0 + tick * TICK_S
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await producer.flush()
