"""Test a contract, its pipeline and the worker without Kafka: realistic records, injected faults, one-call
batches, and an in-memory Kafka transport.

::

    from streams.testing import generate_feature_records, make_messages, run_batch

    batch = generate_feature_records(1000, seed=7, faults={"wrong_type": 0.01, "invalid_enum": 0.02})
    messages = make_messages(batch.records, "features.card-transactions.v1")
    result = run_batch("contracts/card_transactions.odcs.yaml", messages)
    assert result.counts["quarantined"] == len(batch.expected_invalid)

* :mod:`.generators` — ``generate_feature_records``, ``generate_prediction_records``, ``Fault``;
* :mod:`.messages` — ``make_messages``, ``run_batch``, ``undecodable_messages``;
* :mod:`.transport` — ``InMemoryTransport``: a Kafka cluster in a dict, for
  :class:`~streams.kafka.batches.BatchWorker` tests without a broker (imported on first access).
"""

from __future__ import annotations

from typing import Any

from streams.testing.generators import (
    BASE_TIMESTAMP_MS,
    CLEAN,
    FEATURE_SCHEMA,
    Fault,
    GeneratedRecords,
    generate_feature_frame,
    generate_feature_records,
    generate_prediction_records,
)
from streams.testing.messages import make_messages, run_batch, undecodable_messages

__all__ = [
    "BASE_TIMESTAMP_MS",
    "CLEAN",
    "FEATURE_SCHEMA",
    "Fault",
    "GeneratedRecords",
    "InMemoryTransport",
    "generate_feature_frame",
    "generate_feature_records",
    "generate_prediction_records",
    "make_messages",
    "run_batch",
    "undecodable_messages",
]


def __getattr__(name: str) -> Any:
    """``InMemoryTransport`` is imported on first access (it pulls in the Kafka layer)."""
    if name == "InMemoryTransport":
        from streams.testing.transport import InMemoryTransport

        return InMemoryTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
