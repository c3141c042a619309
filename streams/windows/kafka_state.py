"""The stream-time topics on a real cluster: created compacted, read back with a manual consumer.

:class:`KafkaStateReader` reads one partition of a stream-time topic from an offset to its
end with its own aiokafka consumer (no group: partitions assigned by hand, nothing
committed), for restoring state on assignment and for the merger's tail.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from streams.kafka.connection import client_config
from streams.kafka.topics import create_topics
from streams.pipeline.records import Message
from streams.settings import Settings
from streams.windows.topics import changelog_topic, state_topic

log = logging.getLogger(__name__)

__all__ = ["COMPACTED", "KafkaStateReader", "ensure_state_topics"]

#: Topic configuration of the stream-time topics: only the last record per key is kept.
COMPACTED = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1", "segment.ms": "600000"}


async def ensure_state_topics(settings: Settings) -> list[str]:
    """Create the compacted stream-time topics the cluster lacks (``STREAMS_STATE_PARTITIONS`` partitions)."""
    topics = [state_topic(settings.app_id), changelog_topic(settings.app_id)]
    if not settings.create_topics:
        return []
    return await asyncio.to_thread(
        create_topics, settings, topics, partitions=settings.state_partitions, configs=COMPACTED
    )


class KafkaStateReader:
    """Reads partitions of the stream-time topics (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._consumer: Any = None
        self._lock = asyncio.Lock()

    async def _client(self) -> Any:
        if self._consumer is None:
            from aiokafka import AIOKafkaConsumer

            consumer = AIOKafkaConsumer(
                **client_config(self.settings, "aiokafka"), group_id=None, enable_auto_commit=False,
                auto_offset_reset="earliest", client_id=f"{self.settings.app_id}-stream-time",
            )  # fmt: skip
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def _end_offset(self, tp: Any, attempts: int = 8) -> tuple[Any, int]:
        """The reader's consumer, assigned ``tp``, and the end offset of ``tp``.

        A state topic created moments ago may have no known leader yet in this client's metadata
        (``StaleMetadata``), or ``end_offsets`` may wait out its whole request timeout: the consumer is
        then closed and built again (fresh metadata) with a backoff, so that restoring state on
        assignment does not hang on one stale client.
        """
        from aiokafka.errors import KafkaError

        for attempt in range(attempts):
            consumer = await self._client()
            consumer.assign([tp])
            try:
                return consumer, int((await asyncio.wait_for(consumer.end_offsets([tp]), timeout=10.0))[tp])
            except (KafkaError, TimeoutError) as exc:
                if attempt == attempts - 1:
                    raise
                log.warning(
                    "end offset of %s[%d] unknown (%r); reconnecting the state reader", tp.topic, tp.partition, exc
                )
                await self.close()
                await asyncio.sleep(min(0.5 * 2**attempt, 5.0))
        raise AssertionError("unreachable")

    async def read(self, topic: str, partition: int, start: int = 0) -> tuple[list[Message], int]:
        from aiokafka import TopicPartition as AioTP

        async with self._lock:
            tp = AioTP(topic, partition)
            consumer, end = await self._end_offset(tp)
            if start >= end:
                return [], max(start, end)
            consumer.seek(tp, start)
            out: list[Message] = []
            while await consumer.position(tp) < end:
                batches = await consumer.getmany(tp, timeout_ms=1_000, max_records=10_000)
                for r in batches.get(tp, ()):
                    if r.offset < end:
                        out.append(
                            Message(topic, partition, r.offset, r.value, r.key, tuple(r.headers or ()), r.timestamp)
                        )
            return out, end

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
