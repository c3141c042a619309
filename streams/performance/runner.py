"""``qstreams performance run``: the :class:`~streams.performance.joiner.PerformanceJoiner` on a Kafka cluster.

The session is the policy agent's (:mod:`streams.policies.runner`), applied to the join:

1. create what is missing: the state topic (compacted, one partition) and the quality-event topic;
2. start a **transactional** producer (``transactional_id`` = ``<app_id>-<joiner_id>``): starting
   it fences a previous instance of the same joiner and aborts its open transaction;
3. restore the joiner from the state topic, read ``read_committed`` to its end;
4. assign every partition of the predictions and the labels topics (no consumer group: the offsets
   live in the state topic) and seek to the restored offsets;
5. per poll: feed every record to the joiner, then let processing time advance it (idle
   partitions), and produce the ``model.performance`` events **and** the changed state records in
   one transaction.

A Kafka error ends the session; the joiner is rebuilt from the state topic (what was committed)
after a backoff. Run one joiner process per (contract, schema object), restarted by a supervisor: a
second one with the same ``joiner_id`` stays correct (each session fences the other and restores what it
committed) but the two fence each other in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from streams.errors import BrokerError
from streams.kafka.connection import client_config
from streams.kafka.readers import COMPACTED, partitions_of, read_all, reader_consumer
from streams.kafka.topics import create_topics
from streams.performance.binding import JoinSpec
from streams.performance.joiner import PerformanceJoiner
from streams.performance.telemetry import JoinCounters
from streams.pipeline.records import Message, OutRecord
from streams.settings import Settings

__all__ = ["run_joiner", "state_topic"]

log = logging.getLogger(__name__)


def state_topic(settings: Settings) -> str:
    """The joiner's default state topic: ``<app_id>.performance-state``."""
    return settings.app_id + ".performance-state"


class _Session:
    def __init__(self, settings: Settings, spec: JoinSpec, joiner_id: str, state: str, counters: JoinCounters,
                 poll_timeout_ms: int) -> None:  # fmt: skip
        self.settings, self.spec, self.joiner_id, self.state, self.poll_timeout_ms = (
            settings, spec, joiner_id, state, poll_timeout_ms
        )  # fmt: skip
        self.joiner = PerformanceJoiner(spec, joiner_id=joiner_id, events_topic=settings.events_topic,
                                        counters=counters)  # fmt: skip
        self.producer: Any = None
        self.consumer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer, TopicPartition

        s, name = self.settings, f"{self.settings.app_id}-{self.joiner_id}"
        self.producer = AIOKafkaProducer(
            **client_config(s, "aiokafka"), client_id=name, acks="all", enable_idempotence=True,
            transactional_id=name, transaction_timeout_ms=60_000,
        )  # fmt: skip
        await self.producer.start()  # fences the predecessor: its open transaction is aborted
        reader = reader_consumer(s, f"{name}-restore")
        await reader.start()
        try:
            records = await read_all(reader, self.state)
        finally:
            await reader.stop()
        self.joiner.restore(records)
        self.consumer = reader_consumer(s, name)
        await self.consumer.start()
        topics = (self.spec.predictions_topic, self.spec.labels.topic)
        parts = {t: await partitions_of(self.consumer, t) for t in topics}
        missing = [t for t, p in parts.items() if not p]
        if missing:
            raise BrokerError(f"topic(s) {', '.join(missing)} do not exist (yet); the joiner waits for them")
        self.joiner.assign(parts)
        tps = [TopicPartition(t, p) for t, ps in parts.items() for p in ps]
        self.consumer.assign(tps)
        for tp in tps:
            offset = self.joiner.offsets.get((tp.topic, tp.partition))
            if offset is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)
        log.info("performance joiner %s restored: %d state records, %d open prediction id(s), %d window partial(s); "
                 "partitions %s", self.joiner_id, len(records), len(self.joiner.entries), len(self.joiner.partials),
                 parts)  # fmt: skip

    async def produce(self, records: list[OutRecord]) -> None:
        records = records + self.joiner.state_records(self.state)
        if not records:
            return
        async with self.producer.transaction():
            for r in records:
                await self.producer.send(r.topic, value=r.value, key=r.key, headers=list(r.headers),
                                         partition=r.partition)  # fmt: skip

    async def step(self) -> None:
        batches = await self.consumer.getmany(timeout_ms=self.poll_timeout_ms, max_records=5000)
        out: list[OutRecord] = []
        for tp, records in sorted(batches.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
            for r in records:
                msg = Message(tp.topic, tp.partition, r.offset, r.value, r.key, tuple(r.headers or ()), r.timestamp)
                out += self.joiner.handle(msg)
        out += self.joiner.tick()
        if out:
            log.info("performance joiner %s: %d model.performance event(s)", self.joiner_id, len(out))
        await self.produce(out)

    async def close(self) -> None:
        for client in (self.consumer, self.producer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()


async def run_joiner(
    settings: Settings, spec: JoinSpec, *, joiner_id: str, state: str, stop: asyncio.Event,
    counters: JoinCounters | None = None, poll_timeout_ms: int = 500,
    on_ready: Callable[[PerformanceJoiner], None] | None = None,
) -> None:  # fmt: skip
    """Run the joiner until ``stop`` is set; a failed session is rebuilt from the state topic after a backoff."""
    from aiokafka.errors import KafkaError

    counters = counters or JoinCounters()
    attempt = 0
    while not stop.is_set():
        session = _Session(settings, spec, joiner_id, state, counters, poll_timeout_ms)
        try:
            if settings.create_topics:
                await asyncio.to_thread(create_topics, settings, [state], partitions=1, configs=COMPACTED)
                await asyncio.to_thread(create_topics, settings, [settings.events_topic])
            await session.start()
            attempt = 0
            if on_ready is not None:
                on_ready(session.joiner)
            while not stop.is_set():
                await session.step()
        except (KafkaError, OSError, BrokerError) as exc:
            attempt += 1
            delay = min(0.5 * 2**attempt, 30.0)
            log.warning("performance joiner session failed (%s: %s); restoring from the state topic in %.1fs",
                        type(exc).__name__, exc, delay)  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        finally:
            await session.close()
