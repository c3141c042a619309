"""Kafka helpers shared by the transactional agents (policy agent, performance joiner): no group, committed reads.

* :data:`COMPACTED`: the topic configs of an agent's state topic (compacted, cleaned often);
* :func:`reader_consumer`: a consumer without a group reading only committed records;
* :func:`partitions_of`: a topic's partitions without auto-creating it;
* :func:`read_all`: every committed record of a topic, from the beginning to its end now (a restore).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streams.kafka.connection import client_config
from streams.pipeline.records import Message

if TYPE_CHECKING:
    from streams.settings import Settings

__all__ = ["COMPACTED", "partitions_of", "read_all", "reader_consumer"]

COMPACTED = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1", "segment.ms": "600000"}


def reader_consumer(settings: Settings, client_id: str) -> Any:
    """A consumer without a group that reads only committed records (the agents write transactionally)."""
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(
        **client_config(settings, "aiokafka"), group_id=None, enable_auto_commit=False, client_id=client_id,
        auto_offset_reset="earliest", isolation_level="read_committed",
    )  # fmt: skip


async def partitions_of(consumer: Any, topic: str) -> list[int]:
    """The partitions of ``topic`` (a metadata request for all topics: it does not auto-create ``topic``)."""
    cluster = await consumer._client.fetch_all_metadata()
    return sorted(cluster.partitions_for_topic(topic) or ())


async def read_all(consumer: Any, topic: str, partitions: list[int] | None = None) -> list[Message]:
    """Every committed record of ``topic`` (``partitions``, default all), from the beginning to its end now."""
    from aiokafka import TopicPartition

    parts = await partitions_of(consumer, topic) if partitions is None else partitions
    tps = [TopicPartition(topic, p) for p in parts]
    if not tps:
        return []
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    ends = await consumer.end_offsets(tps)
    out: list[Message] = []
    while any([await consumer.position(tp) < ends[tp] for tp in tps]):
        for tp, records in (await consumer.getmany(*tps, timeout_ms=1000, max_records=10_000)).items():
            out += [Message(tp.topic, tp.partition, r.offset, r.value, r.key, tuple(r.headers or ())) for r in records]
    return out
