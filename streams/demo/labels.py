"""The demo's ground truth: a label for most predictions, a realistic delay after each, keyed by prediction id.

The truth of a transaction does not depend on the model that scored it. The demo's clean prediction
generator (:func:`streams.testing.generate_prediction_records`) scores each transaction with its fraud
probability ``p ~ Beta(1.2, 12)``: that is model 3.2.1, a calibrated model. The actual label is drawn
from ``p`` (fraud with probability ``p``) whatever happens to the prediction afterwards, so

* model 3.2.1 (scores ``p``, predicts fraud when ``p >= 0.5``) is right with probability
  ``E[max(p, 1 - p)] ≈ 0.909``;
* model 3.3.0 of the confidence-collapse incident (scores ``0.5 + N(0, 0.04)``, independent of ``p``)
  predicts fraud for about half of the transactions whatever their truth: its scores carry no
  information, and it is right about half of the time.

:class:`LabelQueue` holds the labels owed: :meth:`LabelQueue.observe` is called by the predictions
producer for each prediction it sends (with the transaction's fraud probability, read from the clean
record before any incident changed it) and owes a label for :data:`LABEL_SHARE` of them, due
:data:`DELAY_S` seconds later; :func:`produce_labels` sends them when due to :data:`LABELS_TOPIC`, keyed
by prediction id like the predictions (co-partitioned topics, docs/drift.md "Realized performance").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from streams.demo.producers import ProducerStats

__all__ = ["DELAY_S", "LABELS_TOPIC", "LABEL_SHARE", "LabelQueue", "PendingLabel", "label_record", "produce_labels"]

#: the labels topic bound by contracts/fraud_predictions.odcs.yaml (``qstreams.prediction.labels.topic``)
LABELS_TOPIC = "predictions.card-fraud.v1.labels"
#: the share of predictions whose outcome becomes known (the others stay unmatched)
LABEL_SHARE = 0.9
#: seconds between a prediction and its label (uniform): well inside the contract's 5 s horizon
DELAY_S = (0.5, 3.0)
TICK_S = 0.1


@dataclass(frozen=True, slots=True, order=True)
class PendingLabel:
    due: float  # epoch seconds: when the outcome is known (the label's ``labelled_at``)
    prediction_id: str
    fraud: bool


def label_record(label: PendingLabel) -> dict[str, Any]:
    """The labels-topic record of ``label`` (the fields the contract's labels binding names)."""
    moment = dt.datetime.fromtimestamp(label.due, dt.UTC)
    return {
        "prediction_id": label.prediction_id,
        "actual_label": "fraud" if label.fraud else "legit",
        "labelled_at": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


class LabelQueue:
    """The labels owed, in due order (see the module docstring); ``seed`` fixes its draws."""

    def __init__(self, *, seed: int = 0, share: float = LABEL_SHARE, delay_s: tuple[float, float] = DELAY_S) -> None:
        self.rng = random.Random(seed)
        self.share, self.delay_s = share, delay_s
        self._heap: list[PendingLabel] = []

    def observe(self, prediction_id: str, fraud_probability: float, now: float) -> PendingLabel | None:
        """A prediction sent at ``now`` (epoch s) for a transaction of ``fraud_probability``: its label, if one
        will be known (drawn now, due a delay later), else None."""
        fraud = self.rng.random() < fraud_probability
        if self.rng.random() >= self.share:
            return None
        label = PendingLabel(now + self.rng.uniform(*self.delay_s), prediction_id, fraud)
        heapq.heappush(self._heap, label)
        return label

    def due(self, now: float) -> list[PendingLabel]:
        """The labels due at ``now`` (epoch s), in due order, taken off the queue."""
        out = []
        while self._heap and self._heap[0].due <= now:
            out.append(heapq.heappop(self._heap))
        return out

    def __len__(self) -> int:
        return len(self._heap)


async def produce_labels(producer: Any, queue: LabelQueue, stats: ProducerStats, *, done: Callable[[], bool]) -> None:
    """Send each label of ``queue`` when due (an aiokafka producer), until ``done()`` and nothing is owed."""
    while True:
        for label in queue.due(time.time()):
            value = orjson.dumps(label_record(label))
            await producer.send(LABELS_TOPIC, value=value, key=label.prediction_id.encode())
            stats.sent["labels"] += 1
        if done() and not queue:
            break
        await asyncio.sleep(TICK_S)
    await producer.flush()
