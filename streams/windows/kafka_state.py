"""The stream-time topics on a real cluster: created compacted, read back with a manual consumer.

:class:`KafkaStateReader` reads one partition of a stream-time topic from an offset to its
end with its own aiokafka consumer (no group: partitions assigned by hand, nothing
committed), for restoring state on assignment and for the merger's tail.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from streams.kafka.connection import client_config
from streams.kafka.topics import create_topics
from streams.pipeline.records import Message
from streams.settings import Settings
from streams.windows.topics import changelog_topic, state_topic

log = logging.getLogger(__name__)

__all__ = ["COMPACTED", "KafkaStateReader", "ensure_state_topics", "read_sync"]

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

    async def _end_offset(self, tp: Any, attempts: int = 3) -> tuple[Any, int]:
        """The reader's consumer, assigned ``tp``, and the end offset of ``tp``.

        A state topic created moments ago may have no known leader yet in this client's metadata
        (``StaleMetadata``), or ``end_offsets`` may wait out its whole request timeout: the consumer is
        then closed and built again (fresh metadata) with a backoff. Raises after ``attempts``.
        """
        from aiokafka.errors import KafkaError

        for attempt in range(attempts):
            consumer = await self._client()
            consumer.assign([tp])
            try:  # asyncio.timeout, not wait_for: on 3.11 wait_for can lose a cancellation (the observer's ticks)
                async with asyncio.timeout(10.0):
                    return consumer, int((await consumer.end_offsets([tp]))[tp])
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
        """The records of ``topic[partition]`` from ``start`` to its end, and the end offset.

        Read with the reader's aiokafka consumer; when that client cannot find the partition's end (see
        :meth:`_end_offset`), with a kafka-python consumer (another client, its own metadata) in a thread,
        retried until it answers: restoring state never gives up while the cluster is reachable.
        """
        from aiokafka import TopicPartition as AioTP
        from aiokafka.errors import KafkaError

        async with self._lock:
            tp = AioTP(topic, partition)
            try:
                consumer, end = await self._end_offset(tp)
            except (KafkaError, TimeoutError) as exc:
                log.warning("reading %s[%d] with a kafka-python consumer instead (%r)", topic, partition, exc)
                await self.close()
                return await _retrying(lambda: asyncio.to_thread(read_sync, self.settings, topic, partition, start))
            if start >= end:
                return [], max(start, end)
            try:
                return await _read_to(consumer, tp, start, end), end
            except TimeoutError as exc:
                log.warning("reading %s[%d] with a kafka-python consumer instead (%r)", topic, partition, exc)
                await self.close()
                return await _retrying(lambda: asyncio.to_thread(read_sync, self.settings, topic, partition, start))

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


async def _read_to(consumer: Any, tp: Any, start: int, end: int, stall_s: float = 30.0) -> list[Message]:
    """The records of ``tp`` in ``[start, end)``; :class:`TimeoutError` when no record came for ``stall_s``."""
    consumer.seek(tp, start)
    out: list[Message] = []
    loop = asyncio.get_running_loop()
    last = loop.time()
    while await consumer.position(tp) < end:
        batch = (await consumer.getmany(tp, timeout_ms=1_000, max_records=10_000)).get(tp, ())
        if batch:
            last = loop.time()
        elif loop.time() - last > stall_s:
            raise TimeoutError(f"no record of {tp.topic}[{tp.partition}] for {stall_s:.0f} s before offset {end}")
        for r in batch:
            if r.offset < end:
                out.append(Message(tp.topic, tp.partition, r.offset, r.value, r.key, tuple(r.headers or ()),
                                   r.timestamp))  # fmt: skip
    return out


async def _retrying(call: Callable[[], Awaitable[tuple[list[Message], int]]]) -> tuple[list[Message], int]:
    delay = 0.5
    while True:
        try:
            return await call()
        except Exception as exc:  # the cluster did not answer: wait and ask again (logged, never silent)
            log.warning("reading stream-time state failed (%r); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def read_sync(settings: Settings, topic: str, partition: int, start: int = 0) -> tuple[list[Message], int]:
    """:meth:`KafkaStateReader.read` with a kafka-python consumer (blocking: run it in a thread)."""
    from kafka import KafkaConsumer, TopicPartition  # type: ignore[import-untyped,unused-ignore]

    consumer = KafkaConsumer(
        **client_config(settings, "kafka-python"), group_id=None, enable_auto_commit=False,
        client_id=f"{settings.app_id}-stream-time-sync", request_timeout_ms=15_000, allow_auto_create_topics=False,
    )  # fmt: skip
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        end = int(consumer.end_offsets([tp])[tp])
        if start >= end:
            return [], max(start, end)
        consumer.seek(tp, start)
        out: list[Message] = []
        while consumer.position(tp) < end:
            for r in consumer.poll(timeout_ms=1_000, max_records=10_000).get(tp, ()):
                if r.offset < end:
                    headers = tuple((k, v) for k, v in (r.headers or ()))
                    out.append(Message(topic, partition, r.offset, r.value, r.key, headers, r.timestamp))
        return out, end
    finally:
        consumer.close()
