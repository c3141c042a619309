"""``qstreams performance run``: the join on a Kafka cluster, spread over the processes of one consumer group.

The predictions and labels topics must be **co-partitioned**: both keyed by prediction id, with the
same partition count and the producers' default partitioner, so that every record of an id is in
partition ``p`` of both (pair ``p``). Every process of a (contract, schema object) runs with the same
``joiner_id`` and joins the consumer group ``<app_id>-<joiner_id>``, subscribed to both topics with
the **range** assignor, which lays out each topic's partitions over the sorted members in the same
ranges: equal partition numbers of the two topics go to the same member (aiokafka's default,
round robin, would not). One session:

1. create what is missing: the state and merge topics (compacted, one partition) and the
   quality-event topic; refuse to start (:class:`~streams.errors.SettingsError`, exit 2) when the two
   topics' partition counts differ;
2. on every assignment (``ConsumerRebalanceListener``): per newly owned pair start a
   **transactional** producer (``transactional_id`` = ``<app_id>-<joiner_id>-p<p>``: starting it
   fences the pair's previous owner and aborts its open transaction), restore the pair's
   :class:`~streams.performance.merge.PairJoiner` from the state topic (``read_committed``), and seek
   both partitions to the restored offsets (the group's own offsets are never used); the owner of pair
   0 also restores the :class:`~streams.performance.merge.PerformanceMerger` from the merge topic;
3. per poll: feed each record to its pair's joiner, let processing time advance them (idle
   partitions), feed the merger what the merge topic got, and produce per pair, in **one transaction
   on the pair's producer**, its changed state records and its shares and mark (for pair 0, also the
   merger's ``model.performance`` events, ``closed`` marker and tombstones).

A Kafka error ends the session; it is rebuilt from the state topic after a backoff. One member is the
single-process case: it owns every pair and merges.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from streams.errors import BrokerError, SettingsError
from streams.kafka.connection import client_config
from streams.kafka.readers import COMPACTED, partitions_of, read_all, reader_consumer
from streams.kafka.sessions import run_sessions
from streams.kafka.topics import create_topics
from streams.performance.binding import JoinSpec
from streams.performance.merge import PairJoiner, PerformanceMerger
from streams.performance.telemetry import JoinCounters
from streams.pipeline.records import Message, OutRecord
from streams.settings import Settings

__all__ = ["assignor", "check_copartitioned", "merge_topic", "run_joiner", "state_topic"]

log = logging.getLogger(__name__)


def state_topic(settings: Settings) -> str:
    """The joiner's default state topic: ``<app_id>.performance-state``."""
    return settings.app_id + ".performance-state"


def merge_topic(state: str) -> str:
    """The merge topic beside a state topic: ``<app_id>.performance-merge`` for the default one."""
    return state.removesuffix("-state") + "-merge"


def assignor() -> Any:
    """The partition assignor of the joiners' group: range, which co-assigns equal partition numbers of two topics
    of the same partition count (round robin, aiokafka's default, does not)."""
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor

    return RangePartitionAssignor


def check_copartitioned(spec: JoinSpec, counts: dict[str, int]) -> None:
    """:class:`SettingsError` unless the predictions and labels topics have the same number of partitions."""
    preds, labels = counts[spec.predictions_topic], counts[spec.labels.topic]
    if preds != labels:
        raise SettingsError(
            f"the predictions topic {spec.predictions_topic!r} has {preds} partition(s) and the labels topic "
            f"{spec.labels.topic!r} has {labels}: the join needs them co-partitioned (the same partition count, "
            "both keyed by prediction id with the default partitioner); repartition one of them"
        )


def _listener(session: _Session) -> Any:
    """The consumer's rebalance listener: hands each new assignment to the session, under its lock."""
    from aiokafka import ConsumerRebalanceListener

    class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
        async def on_partitions_revoked(self, revoked: Any) -> None:
            async with session.lock:  # no poll of a revoked pair in flight past this point
                pass

        async def on_partitions_assigned(self, assigned: Any) -> None:
            try:
                async with session.lock:
                    await session.own(assigned)
            except Exception as exc:  # aiokafka logs and swallows a listener's error: the next step raises it
                session.failure = exc

    return Listener()


class _Session:
    def __init__(self, settings: Settings, spec: JoinSpec, joiner_id: str, state: str, counters: JoinCounters,
                 poll_timeout_ms: int) -> None:  # fmt: skip
        self.settings, self.spec, self.joiner_id, self.state, self.poll_timeout_ms = (
            settings, spec, joiner_id, state, poll_timeout_ms
        )  # fmt: skip
        self.merge = merge_topic(state)
        self.counters = counters
        self.name = f"{settings.app_id}-{joiner_id}"
        self.lock = asyncio.Lock()
        self.failure: BaseException | None = None
        self.npairs = 0
        self.joiners: dict[int, PairJoiner] = {}
        self.producers: dict[int, Any] = {}
        self.merger: PerformanceMerger | None = None
        self.merge_reader: Any = None
        self.consumer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer

        topics = (self.spec.predictions_topic, self.spec.labels.topic)
        meta = reader_consumer(self.settings, f"{self.name}-metadata")
        await meta.start()
        try:
            counts = {t: len(await partitions_of(meta, t)) for t in topics}
        finally:
            await meta.stop()
        missing = [t for t, n in counts.items() if not n]
        if missing:
            raise BrokerError(f"topic(s) {', '.join(missing)} do not exist (yet); the joiner waits for them")
        check_copartitioned(self.spec, counts)
        self.npairs = counts[self.spec.predictions_topic]
        self.consumer = AIOKafkaConsumer(
            **client_config(self.settings, "aiokafka"), group_id=self.name, client_id=self.name,
            enable_auto_commit=False, auto_offset_reset="earliest", isolation_level="read_committed",
            partition_assignment_strategy=(assignor(),),
        )  # fmt: skip
        self.consumer.subscribe(list(topics), listener=_listener(self))
        await self.consumer.start()

    async def own(self, assigned: Any) -> None:
        """Take the assignment: drop the pairs gone, restore the new ones (and the merger with pair 0), seek."""
        from aiokafka import AIOKafkaProducer

        by_topic: dict[str, set[int]] = {self.spec.predictions_topic: set(), self.spec.labels.topic: set()}
        for tp in assigned:
            by_topic.setdefault(tp.topic, set()).add(tp.partition)
        pairs = by_topic[self.spec.predictions_topic]
        if pairs != by_topic[self.spec.labels.topic]:
            raise SettingsError(f"the group assigned predictions partitions {sorted(pairs)} with labels partitions "
                                f"{sorted(by_topic[self.spec.labels.topic])}: not co-partitioned pairs")  # fmt: skip
        for p in sorted(set(self.joiners) - pairs):
            await self._drop(p)
        new = sorted(pairs - set(self.joiners))
        for p in new:  # fence each pair's previous owner before reading what it committed
            s = self.settings
            producer = AIOKafkaProducer(
                **client_config(s, "aiokafka"), client_id=f"{self.name}-p{p}", acks="all", enable_idempotence=True,
                transactional_id=f"{self.name}-p{p}", transaction_timeout_ms=60_000,
            )  # fmt: skip
            await producer.start()
            self.producers[p] = producer
        if new:
            records = await self._read(self.state)
            for p in new:
                joiner = PairJoiner(self.spec, joiner_id=self.joiner_id, pair=p, merge_topic=self.merge,
                                    counters=self.counters)  # fmt: skip
                joiner.restore(records)
                joiner.assign_pair()
                self.joiners[p] = joiner
            log.info("performance joiner %s restored pair(s) %s: %d state records, %d open prediction id(s), "
                     "%d window partial(s)", self.joiner_id, new, len(records),
                     sum(len(self.joiners[p].entries) for p in new),
                     sum(len(self.joiners[p].partials) for p in new))  # fmt: skip
        ends = await self.consumer.end_offsets(list(assigned)) if assigned else {}
        for tp in assigned:
            offset = self.joiners[tp.partition].offsets.get((tp.topic, tp.partition))
            if offset is not None and offset > ends[tp]:
                # the stored offset is the old topic's: seeking there, the consumer reads the new one from its start and
                # the joiner took every record below it for one consumed before the restart (silently never joined)
                log.warning("%s[%d] ends at offset %d, before the stored offset %d: the topic was recreated or "
                            "truncated; reading it from its start", tp.topic, tp.partition, ends[tp],
                            offset)  # fmt: skip
                self.joiners[tp.partition].rewind(tp.topic, tp.partition)
                offset = None
            if offset is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)
        if 0 in pairs and self.merger is None:
            await self._start_merger()
        log.info("performance joiner %s owns pair(s) %s of %d%s", self.joiner_id, sorted(pairs), self.npairs,
                 " and merges" if self.merger else "")  # fmt: skip

    async def _read(self, topic: str) -> list[Message]:
        reader = reader_consumer(self.settings, f"{self.name}-restore")
        await reader.start()
        try:
            return await read_all(reader, topic)
        finally:
            await reader.stop()

    async def _start_merger(self) -> None:
        self.merger = PerformanceMerger(self.spec, self.joiner_id, self.npairs, self.settings.events_topic,
                                        self.merge, counters=self.counters)  # fmt: skip
        self.merge_reader = reader_consumer(self.settings, f"{self.name}-merger")
        await self.merge_reader.start()
        records = await read_all(self.merge_reader, self.merge, [0])  # stays assigned, at the end
        self.merger.feed(records)
        log.info("performance merger %s restored: %d merge records, %d share(s), published through %d",
                 self.joiner_id, len(records), len(self.merger.shares), self.merger.closed_through)  # fmt: skip

    async def _drop(self, p: int) -> None:
        self.joiners.pop(p, None)
        producer = self.producers.pop(p, None)
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()
        if p == 0 and self.merger is not None:
            self.merger = None
            with contextlib.suppress(Exception):
                await self.merge_reader.stop()

    async def produce(self, p: int, records: list[OutRecord]) -> None:
        records = records + self.joiners[p].state_records(self.state)
        if not records:
            return
        producer = self.producers[p]
        async with producer.transaction():
            for r in records:
                await producer.send(r.topic, value=r.value, key=r.key, headers=list(r.headers),
                                    partition=r.partition)  # fmt: skip

    async def step(self) -> None:
        if self.failure is not None:
            raise self.failure
        batches = await self.consumer.getmany(timeout_ms=self.poll_timeout_ms, max_records=5000)
        async with self.lock:
            if self.failure is not None:
                raise self.failure
            outs: dict[int, list[OutRecord]] = {p: [] for p in self.joiners}
            for tp, records in sorted(batches.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
                joiner = self.joiners.get(tp.partition)
                if joiner is None:
                    continue  # revoked meanwhile: its new owner reads from what was committed
                for r in records:
                    outs[tp.partition] += joiner.handle(Message(tp.topic, tp.partition, r.offset, r.value, r.key,
                                                                tuple(r.headers or ()), r.timestamp))  # fmt: skip
            for p, joiner in self.joiners.items():
                outs[p] += joiner.tick()
            if self.merger is not None:
                got = await self.merge_reader.getmany(timeout_ms=0, max_records=10_000)
                for tp, records in got.items():
                    self.merger.feed(Message(tp.topic, tp.partition, r.offset, r.value, r.key) for r in records)
                events = self.merger.due()
                if events:
                    log.info("performance merger %s: %d model.performance event(s)", self.joiner_id,
                             sum(r.topic == self.settings.events_topic for r in events))  # fmt: skip
                outs[0] += events
            for p in sorted(outs):
                await self.produce(p, outs[p])

    async def close(self) -> None:
        clients = [self.consumer, self.merge_reader, *self.producers.values()]
        for client in clients:
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()


async def run_joiner(
    settings: Settings, spec: JoinSpec, *, joiner_id: str, state: str, stop: asyncio.Event,
    counters: JoinCounters | None = None, poll_timeout_ms: int = 500,
    on_ready: Callable[[Any], None] | None = None,
) -> None:  # fmt: skip
    """Run one member of the join until ``stop`` is set; a failed session is rebuilt after a backoff.

    :class:`SettingsError` (topics not co-partitioned) ends it."""
    counters = counters or JoinCounters()

    async def prepare() -> None:
        if settings.create_topics:
            await asyncio.to_thread(create_topics, settings, [state, merge_topic(state)], partitions=1,
                                    configs=COMPACTED)  # fmt: skip
            await asyncio.to_thread(create_topics, settings, [settings.events_topic])

    await run_sessions(
        lambda: _Session(settings, spec, joiner_id, state, counters, poll_timeout_ms),
        stop=stop, name="performance joiner", prepare=prepare, on_ready=on_ready,
    )  # fmt: skip
