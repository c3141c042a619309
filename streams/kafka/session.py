"""The aiokafka clients of one worker: topics ensured, clients started, source topics subscribed.

Used by :class:`streams.kafka.transport.AIOKafkaTransport`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from streams.errors import BrokerError
from streams.kafka.connection import auth_failure, backoff, consumer_config, max_request_size, producer_config
from streams.kafka.observers import WorkerObserver
from streams.kafka.topics import DEFAULT_MAX_MESSAGE_BYTES, ensure_topics, output_topics, topic_max_message_bytes
from streams.settings import Settings

__all__ = ["KafkaSession"]

log = logging.getLogger(__name__)


T = TypeVar("T")


class KafkaSession:
    """The Kafka clients of one worker: output topics ensured, clients started and source topics subscribed.

    An unreachable broker is retried forever with backoff, logged loudly (``broker host:port
    unreachable, retrying in Ns``) and reported on ``/health``; only configuration errors raise.
    Source topics that do not exist are not subscribed (nor created): :meth:`probe` looks again.
    """

    def __init__(self, settings: Settings, worker_id: str, sources: Sequence[str], *, stop: asyncio.Event,
                 observer: WorkerObserver) -> None:  # fmt: skip
        self.settings, self.worker_id, self.sources = settings, worker_id, tuple(sources)
        self.stop, self.observer = stop, observer
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.events: AIOKafkaProducer | None = None  # lifecycle events: never transactional
        self.subscribed: tuple[str, ...] = ()
        self.missing: tuple[str, ...] = ()
        self._partitions: dict[str, int] = {}
        self._stale: set[str] = set()
        self.limits: dict[str, int] = {}  # max.message.bytes per output topic, as last read
        self._unreachable = False

    def _down(self, reason: str) -> None:
        self.observer.on_unreachable(self.sources, reason)

    async def retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T | None:
        """``await call()`` until it works; None once ``stop`` is set."""
        attempt = 0
        while not self.stop.is_set():
            try:
                return await call()
            except (BrokerError, KafkaError, OSError) as exc:
                attempt += 1
                delay = backoff(self.settings, attempt)
                refused = auth_failure(exc)
                if refused is not None:  # not "unreachable": credentials, certificates or ACLs need a person
                    log.error("broker %s refused this worker (%s), retrying in %.1fs (%s)",
                              self.settings.bootstrap_servers, refused, delay, what)  # fmt: skip
                    self._down(refused)
                else:
                    log.error("broker %s unreachable, retrying in %.1fs (%s: %s)",
                              self.settings.bootstrap_servers, delay, what, exc)  # fmt: skip
                    self._down("broker unreachable")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), delay)
        return None

    async def connect(self, listener: ConsumerRebalanceListener) -> bool:
        """Topics, clients, subscription; False when stopped before connecting."""
        s = self.settings
        state = await self.retrying("creating topics", lambda: asyncio.to_thread(ensure_topics, s, self.sources))
        if state is None:
            return False
        self.producer = AIOKafkaProducer(**producer_config(s, self.worker_id))
        self.consumer = AIOKafkaConsumer(**consumer_config(s, self.worker_id))
        self.events = self.producer
        if s.exactly_once:
            self.events = AIOKafkaProducer(**producer_config(s, self.worker_id, transactional=False))
        clients: list[AIOKafkaProducer | AIOKafkaConsumer] = [*dict.fromkeys((self.producer, self.events))]
        for client in [*clients, self.consumer]:
            if await self.retrying("starting the Kafka clients", functools.partial(_started, client)) is None:
                return False
        for topic in output_topics(s, state.sources_present):
            await self.partition_count(topic)
        self.missing = state.sources_missing
        self.subscribe(state.sources_present, listener)
        return True

    def subscribe(self, topics: Sequence[str], listener: ConsumerRebalanceListener) -> None:
        assert self.consumer is not None
        wanted = tuple(sorted(topics))
        if wanted and wanted != self.subscribed:
            self.consumer.subscribe(list(wanted), listener=listener)
        self.subscribed = wanted
        self.observer.on_subscribed(wanted, self.missing)

    async def probe(self, listener: ConsumerRebalanceListener) -> list[str]:
        """Check the broker answers (loud log if not) and subscribe to source topics that appeared; returns those."""
        assert self.consumer is not None
        every = self.settings.topic_check_interval_s
        try:
            cluster_topics = await asyncio.wait_for(self.consumer.topics(), max(every, 5.0))
            appeared = [t for t in self.missing if t in cluster_topics]
            state = await asyncio.to_thread(ensure_topics, self.settings, self.sources) if appeared else None
        except (TimeoutError, KafkaError, BrokerError, OSError) as exc:
            refused = auth_failure(exc)
            log.error("broker %s %s, retrying in %.0fs (%r)", self.settings.bootstrap_servers,
                      f"refused this worker ({refused})" if refused else "unreachable", every, exc)  # fmt: skip
            self._unreachable = True
            self._down(refused or "broker unreachable")
            return []
        if self._unreachable:
            log.warning("broker %s reachable again", self.settings.bootstrap_servers)
            self._unreachable = False
        self.forget_partition_counts()
        if state is not None:
            log.info("source topics now present: %s", ", ".join(appeared))
            self.missing = state.sources_missing
        self.subscribe(state.sources_present if state is not None else self.subscribed, listener)
        return appeared

    async def partition_count(self, topic: str) -> int:
        if topic in self._stale:
            await self.repair(topic)
        if topic not in self._partitions:
            assert self.producer is not None
            self._partitions[topic] = len(await self.producer.partitions_for(topic))
        return self._partitions[topic]

    def stale(self, *topics: str) -> None:
        """A produce to ``topics`` failed on its metadata (deleted, re-partitioned): repair before the next one."""
        self._stale.update(topics)
        for topic in topics:
            self._partitions.pop(topic, None)

    def known_outputs(self) -> list[str]:
        """Output topics whose partition count is known (produced to since the last probe)."""
        return list(self._partitions)

    async def repair(self, topic: str) -> None:
        """Recreate missing output topics and refresh the cluster metadata (``topic``'s partition count)."""
        assert self.producer is not None
        log.warning("output topic %s changed (deleted or re-partitioned?): recreating outputs, refreshing metadata",
                    topic)  # fmt: skip
        try:
            await asyncio.to_thread(ensure_topics, self.settings, self.subscribed or self.sources)
            await self.producer.client.force_metadata_update()
        except (BrokerError, KafkaError, OSError) as exc:
            log.error("cannot repair output topic %s yet (%r); retrying with the next batch", topic, exc)
            return
        self._stale.clear()  # one repair (ensure_topics for every output, a metadata refresh) serves them all
        self._partitions.clear()

    def forget_partition_counts(self) -> None:
        """Read partition counts again (the probe calls this every ``topic_check_interval_s``)."""
        self._partitions.clear()

    async def max_message_bytes(self, topic: str) -> int:
        """``max.message.bytes`` of ``topic`` from the broker, capped by the producer's request size; never raises.

        On failure, the last known value (or Kafka's default) is kept and the failure logged.
        """
        try:
            value = await asyncio.wait_for(asyncio.to_thread(topic_max_message_bytes, self.settings, topic), 15.0)
        except Exception as exc:
            value = self.limits.get(topic, DEFAULT_MAX_MESSAGE_BYTES)
            log.warning("cannot read max.message.bytes of %s, assuming %d: %r", topic, value, exc)
        self.limits[topic] = min(value, max_request_size(self.settings))
        return self.limits[topic]

    async def close(self) -> None:
        for client in dict.fromkeys((self.consumer, self.events, self.producer)):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()


async def _started(client: AIOKafkaProducer | AIOKafkaConsumer) -> bool:
    await client.start()
    return True
