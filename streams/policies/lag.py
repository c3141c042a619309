"""Consumer lag of the workers' group, as ``lag.records`` / ``lag.seconds`` observations for the policy agent.

Lag is not a property of an event-time window: the agent measures it on a fixed **wall-clock interval**
(``STREAMS_POLICY_LAG_INTERVAL_S``), and each measurement is one observation whose window is that interval
``[start, end)`` in wall-clock time, source ``metrics``, one per schema object of a contract that declares a
``lag.*`` policy, carrying the lag of the schema object's topic:

* ``lag.records``: the sum over the topic's partitions of end offset − the group's committed offset (the end is
  the last stable offset: the workers read ``read_committed``; a partition the group never committed, or whose
  committed offset fell behind the log start, counts from the log start). Offsets, as ``kafka-consumer-groups``
  counts them: transaction markers of a transactional producer count too;
* ``lag.seconds``: the wall clock at the measurement − the timestamp of the oldest record the group has not
  consumed (the first record at or after the committed offset, over the partitions that lag): how long the
  oldest waiting record has waited, by its Kafka timestamp (``CreateTime``: the producer's clock). 0 when no
  partition lags or only transaction markers wait; none when the record of some lagging partition could not be
  read (a value that may be too low would resolve an incident it should not).

:func:`consumer_lag` is the arithmetic (pure); :func:`probe_offsets` asks the cluster (blocking, kafka-python:
the runner calls it in a thread, so the agent's loop never waits for it).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from streams.kafka.connection import client_config
from streams.policies.metrics import METRICS, Observation

if TYPE_CHECKING:
    from streams.contracts.model import Contract
    from streams.policies.spec import Policy
    from streams.settings import Settings

__all__ = ["LAG_SOURCE", "PartitionOffsets", "TopicLag", "consumer_lag", "lag_observations", "lag_topics",
           "probe_offsets"]  # fmt: skip

#: the catalog source of ``lag.*``
LAG_SOURCE = "metrics"


@dataclass(frozen=True, slots=True)
class PartitionOffsets:
    """What the cluster says about one source partition and the workers' group."""

    topic: str
    partition: int
    start: int  # log start offset
    end: int  # the offset the group can read up to (read_committed: the last stable offset)
    committed: int | None  # the group's committed offset (the next record it reads); None: never committed
    pending_ms: int | None = None  # timestamp of the first record at or after the position (None: not known)

    @property
    def position(self) -> int:
        """Where the group goes on: its committed offset, or the log start (never committed, or deleted since)."""
        return self.start if self.committed is None else max(self.committed, self.start)

    @property
    def behind(self) -> int:
        return max(self.end - self.position, 0)


@dataclass(frozen=True, slots=True)
class TopicLag:
    """The lag of the workers' group on one topic, summed (records) or worst (seconds) over its partitions."""

    topic: str
    records: int
    seconds: float | None
    partitions: int


def consumer_lag(offsets: Iterable[PartitionOffsets], now_ms: int) -> dict[str, TopicLag]:
    """Per topic: records behind (sum over partitions) and the age in seconds of the oldest waiting record."""
    by_topic: dict[str, list[PartitionOffsets]] = {}
    for o in offsets:
        by_topic.setdefault(o.topic, []).append(o)
    out = {}
    for topic, parts in sorted(by_topic.items()):
        lagging = [p for p in parts if p.behind]
        seconds: float | None = 0.0
        if any(p.pending_ms is None for p in lagging):
            seconds = None  # some waiting record's age is unknown: no value rather than one too low
        elif lagging:
            seconds = max(max(now_ms - int(p.pending_ms or 0), 0) for p in lagging) / 1000
        out[topic] = TopicLag(topic, sum(p.behind for p in parts), seconds, len(parts))
    return out


def _lag_policies(policies: Iterable[Policy]) -> list[Policy]:
    return [p for p in policies if METRICS[p.condition.metric].source == LAG_SOURCE]


def lag_topics(contracts: Mapping[str, Contract], policies: Iterable[Policy]) -> list[str]:
    """The source topics of the schema objects that declare a ``lag.*`` policy (none: nothing to measure)."""
    wanted = {(p.contract, p.schema) for p in _lag_policies(policies)}
    return sorted({so.topic for cid, c in contracts.items() for so in c.schemas if (cid, so.name) in wanted})


def lag_observations(
    contracts: Mapping[str, Contract], policies: Iterable[Policy], lags: Mapping[str, TopicLag], start: datetime,
    end: datetime,
) -> list[Observation]:  # fmt: skip
    """One observation of the interval ``[start, end)`` per schema object with a ``lag.*`` policy whose topic was
    measured (``lag.seconds`` left out when unknown)."""
    wanted = {(p.contract, p.schema) for p in _lag_policies(policies)}
    out = []
    for cid, c in sorted(contracts.items()):
        for so in c.schemas:
            lag = lags.get(so.topic)
            if (cid, so.name) not in wanted or lag is None:
                continue
            metrics = {"lag.records": float(lag.records)}
            if lag.seconds is not None:
                metrics["lag.seconds"] = lag.seconds
            out.append(Observation(cid, so.name, start, end, c.version, metrics=metrics, source=LAG_SOURCE))
    return out


def _first_pending(consumer: Any, tp: Any, position: int, end: int, now_ms: int, wait_s: float) -> int | None:
    """The timestamp of the first committed record at or after ``position``; ``now_ms`` when only transaction
    markers (or aborted records) lie before ``end``; None when it could not be read in ``wait_s``."""
    consumer.assign([tp])
    consumer.seek(tp, position)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        for r in consumer.poll(timeout_ms=200, max_records=1).get(tp, ()):
            return int(r.timestamp) if r.timestamp is not None and r.timestamp >= 0 else None
        if consumer.position(tp) >= end:
            return now_ms  # nothing readable waits: no record is stale
    return None


def _group_offsets(admin: Any, group: str) -> dict[Any, Any]:
    """The group's committed offsets: ``list_group_offsets`` (kafka-python 3), ``list_consumer_group_offsets`` (2)."""
    if hasattr(admin, "list_group_offsets"):
        return dict(admin.list_group_offsets({group: None}).get(group) or {})
    return dict(admin.list_consumer_group_offsets(group))


def probe_offsets(
    settings: Settings, group: str, topics: Sequence[str], *, now_ms: int, wait_s: float = 2.0
) -> list[PartitionOffsets]:
    """Committed offsets of ``group``, log start and end offsets of ``topics``' partitions and, for each partition
    that lags, the timestamp of the first record waiting. Blocking (run it in a thread); raises on a Kafka error."""
    from kafka import KafkaConsumer, TopicPartition  # type: ignore[import-untyped,unused-ignore]
    from kafka.admin import KafkaAdminClient  # type: ignore[import-untyped,unused-ignore]

    config = client_config(settings, "kafka-python")
    admin = KafkaAdminClient(**config, client_id=f"{settings.app_id}-policy-lag", request_timeout_ms=10_000)
    consumer = None
    try:
        committed = {
            (tp.topic, tp.partition): int(om.offset) if om.offset is not None and om.offset >= 0 else None
            for tp, om in _group_offsets(admin, group).items()
        }
        consumer = KafkaConsumer(
            **config, group_id=None, enable_auto_commit=False, isolation_level="read_committed",
            client_id=f"{settings.app_id}-policy-lag", request_timeout_ms=15_000, allow_auto_create_topics=False,
        )  # fmt: skip
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not tps:
            return []
        starts, ends = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
        out = []
        for tp in tps:
            o = PartitionOffsets(tp.topic, tp.partition, int(starts[tp]), int(ends[tp]),
                                 committed.get((tp.topic, tp.partition)))  # fmt: skip
            if o.behind:
                pending = _first_pending(consumer, tp, o.position, o.end, now_ms, wait_s)
                o = PartitionOffsets(o.topic, o.partition, o.start, o.end, o.committed, pending)
            out.append(o)
        return out
    finally:
        for client in (consumer, admin):
            if client is not None:
                client.close()
