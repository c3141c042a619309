"""The :class:`~streams.kafka.transport.Transport` of a real worker: aiokafka clients around a :class:`KafkaSession`.

Outputs are submitted with ``create_batch``/``send_batch`` (one record batch per output topic
and partition), events with ``send``. Client exceptions become
:class:`~streams.errors.TransportError` (the cause kept).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from typing import Any, cast

import aiokafka
from aiokafka import ConsumerRebalanceListener
from aiokafka.errors import (
    CommitFailedError,
    KafkaError,
    KafkaTimeoutError,
    NotLeaderForPartitionError,
    UnknownTopicOrPartitionError,
)
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import OffsetAndMetadata

from streams.errors import CommitRefusedError, TransportError
from streams.kafka.connection import fetch_wait_ms
from streams.kafka.filling import fill
from streams.kafka.observers import WorkerObserver
from streams.kafka.session import KafkaSession
from streams.kafka.transport import AssignmentCallbacks, TopicPartition
from streams.pipeline.fitting import BATCH_OVERHEAD, record_size
from streams.pipeline.records import Headers, Message, OutRecord
from streams.settings import Settings

__all__ = ["AIOKafkaTransport", "to_messages"]


def to_messages(records: Sequence[Any]) -> list[Message]:
    """aiokafka ``ConsumerRecord`` objects as pipeline :class:`Message` values."""
    msg = Message
    return [
        msg(r.topic, r.partition, r.offset, r.value, r.key, r.headers if type(r.headers) is tuple else tuple(r.headers),
            r.timestamp)
        for r in records
    ]  # fmt: skip


def _tp(tp: TopicPartition) -> aiokafka.TopicPartition:
    return tp if type(tp) is aiokafka.TopicPartition else aiokafka.TopicPartition(tp.topic, tp.partition)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, callbacks: AssignmentCallbacks) -> None:
        self.callbacks = callbacks

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.callbacks.partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.callbacks.partitions_assigned(assigned)


class AIOKafkaTransport:
    """One aiokafka consumer (the worker's group) and one idempotent producer (transactional with exactly-once)."""

    def __init__(self, settings: Settings, worker_id: str, sources: Sequence[str], *, stop: asyncio.Event,
                 observer: WorkerObserver) -> None:  # fmt: skip
        """``observer`` hears of subscriptions and of an unreachable broker (the worker passes its observers)."""
        self.settings = settings
        self.session = KafkaSession(settings, worker_id, sources, stop=stop, observer=observer)
        self._listener: _Listener | None = None
        #: per output topic and partition, the task handing its latest batches to the producer (see send_batch)
        self._handing: dict[tuple[str, int], asyncio.Task[None]] = {}

    # -- connection ---------------------------------------------------------------------------

    @property
    def subscribed(self) -> tuple[str, ...]:
        return self.session.subscribed

    @property
    def missing(self) -> tuple[str, ...]:
        return self.session.missing

    @property
    def connected(self) -> bool:
        return self.session.consumer is not None and self.session.producer is not None

    def _listener_for(self, callbacks: AssignmentCallbacks) -> _Listener:
        if self._listener is None or self._listener.callbacks is not callbacks:
            self._listener = _Listener(callbacks)
        return self._listener

    async def connect(self, callbacks: AssignmentCallbacks) -> bool:
        return await self.session.connect(self._listener_for(callbacks))

    async def probe(self, callbacks: AssignmentCallbacks) -> None:
        await self.session.probe(self._listener_for(callbacks))

    async def close(self) -> None:
        for task in list(self._handing.values()):  # batches not handed over yet: unacknowledged, read again
            task.cancel()
        await self.session.close()

    # -- consuming ----------------------------------------------------------------------------

    async def poll(self, max_records: int, timeout_ms: int) -> dict[TopicPartition, list[Message]]:
        """Records fetched until ``max_records`` in all (the worker's ``batch_max_records``) or ``timeout_ms``
        after the first arrived, less the broker's wait for them (:func:`~streams.kafka.filling.fill`,
        :func:`~streams.kafka.connection.fetch_wait_ms`)."""
        assert self.session.consumer is not None
        return await fill(self.fetch, max_records, timeout_ms, held_ms=fetch_wait_ms(self.settings),
                          interrupted=self.session.stop.is_set)  # fmt: skip

    async def fetch(self, max_records: int, timeout_ms: int) -> dict[TopicPartition, list[Message]]:
        """One ``getmany``: what is buffered, else what arrives within ``timeout_ms`` (the old poll)."""
        consumer = self.session.consumer
        assert consumer is not None
        try:
            polled = await consumer.getmany(max_records=max_records, timeout_ms=timeout_ms)
        except KafkaError as exc:
            raise TransportError(f"poll failed: {exc!r}") from exc
        return {cast(TopicPartition, tp): to_messages(rs) for tp, rs in polled.items()}

    def highwater(self, tp: TopicPartition) -> int | None:
        consumer = self.session.consumer
        return consumer.highwater(_tp(tp)) if consumer is not None else None

    def seek(self, tp: TopicPartition, offset: int) -> None:
        assert self.session.consumer is not None
        self.session.consumer.seek(_tp(tp), offset)

    def pause(self, tp: TopicPartition) -> None:
        assert self.session.consumer is not None
        self.session.consumer.pause(_tp(tp))

    def resume(self, tp: TopicPartition) -> None:
        if self.session.consumer is not None:
            self.session.consumer.resume(_tp(tp))

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        assert self.session.consumer is not None
        try:
            await self.session.consumer.commit({_tp(tp): OffsetAndMetadata(o, "") for tp, o in offsets.items()})
        except CommitFailedError as exc:
            raise CommitRefusedError(str(exc)) from exc
        except KafkaError as exc:
            raise TransportError(f"commit failed: {exc!r}") from exc

    # -- producing ----------------------------------------------------------------------------

    async def partition_count(self, topic: str) -> int:
        return await self.session.partition_count(topic)

    async def max_message_bytes(self, topic: str) -> int:
        return await self.session.max_message_bytes(topic)

    async def send_batch(self, topic: str, partition: int, records: Sequence[OutRecord]) -> list[asyncio.Future[Any]]:
        """Build the record batches now and hand them to the producer in the background, in order per partition.

        aiokafka's ``send_batch`` waits until the partition's previous batch left for the broker (one produce
        request in flight per broker): awaiting it batch by batch made a poll's second 1 MB batch of a partition
        wait for the first one's round trip while the worker had CPU work to do. One call's batches are queued
        at once; a second call for the same partition first waits until the first call's batches are with the
        producer (back-pressure, as before, one call deep). The returned futures are the acknowledgements, as
        before; ending a transaction first waits until every batch was handed over."""
        producer = self.session.producer
        assert producer is not None
        key = (topic, partition)
        previous = self._handing.get(key)
        if previous is not None:
            await asyncio.wait([previous])
        try:
            builders = self._build(producer, topic, records)
        except (AssertionError, KafkaError) as exc:
            self.session.stale(topic)
            return [_failed(topic, exc)]
        loop = asyncio.get_running_loop()
        acks: list[asyncio.Future[Any]] = [loop.create_future() for _ in builders]
        previous = self._handing.get(key)  # None unless another call queued meanwhile
        task = loop.create_task(self._hand_over(producer, topic, partition, builders, acks, previous))
        self._handing[key] = task
        task.add_done_callback(lambda t: self._handing.pop(key, None) if self._handing.get(key) is t else None)
        return acks

    def _build(self, producer: Any, topic: str, records: Sequence[OutRecord]) -> list[Any]:
        """``records`` in record batches of at most the producer's batch size and the topic's ``max.message.bytes``."""
        limit = self.session.limits.get(topic)  # batches also cut at the topic's max.message.bytes, when known
        if limit is not None and limit >= self.settings.producer_batch_bytes:
            limit = None  # the producer's own batches (at most producer_batch_bytes) are cut first
        batch, size = producer.create_batch(), BATCH_OVERHEAD
        if limit is None and _bare(batch):
            return _build_bare(producer, batch, records)
        builders = [batch]
        shared: Headers | None = None  # the client wants a list per record: one list per distinct headers tuple
        listed: list[tuple[str, bytes | None]] = []
        for r in records:
            if r.headers is not shared:
                shared, listed = r.headers, list(r.headers)
            if limit is None:  # the common case: the producer's batch size is the tighter bound
                if batch.append(key=r.key, value=r.value, timestamp=r.timestamp_ms, headers=listed) is not None:
                    continue
                n, full = 0, True
            else:
                n = record_size(r)
                full = size > BATCH_OVERHEAD and size + n > limit
            if full or batch.append(key=r.key, value=r.value, timestamp=r.timestamp_ms, headers=listed) is None:
                batch, size = producer.create_batch(), BATCH_OVERHEAD  # a record always fits an empty batch
                builders.append(batch)
                batch.append(key=r.key, value=r.value, timestamp=r.timestamp_ms, headers=listed)
            size += n
        return builders

    async def _hand_over(self, producer: Any, topic: str, partition: int, builders: Sequence[Any],
                         acks: Sequence[asyncio.Future[Any]], previous: asyncio.Task[None] | None) -> None:  # fmt: skip
        """Hand ``builders`` to the producer after the partition's earlier batches; settle ``acks`` with theirs."""
        if previous is not None:
            await asyncio.wait([previous])  # its failures are its own batches'
        for i, builder in enumerate(builders):
            builder.close()  # complete: an open batch lingers linger_ms before it may leave, one batch after another
            try:
                delivered = await producer.send_batch(builder, topic, partition=partition)
            except asyncio.CancelledError:
                for ack in acks[i:]:
                    ack.cancel()
                raise
            except Exception as exc:  # "Unrecognized partition": the topic was deleted or changed; a closed client
                if isinstance(exc, AssertionError | KafkaError):
                    self.session.stale(topic)
                failed = _failed(topic, exc)
                for ack in acks[i:]:
                    _settle(ack, failed)
                return
            delivered.add_done_callback(functools.partial(_settle, acks[i]))

    async def _handed_over(self) -> None:
        """Wait until every batch given to :meth:`send_batch` is with the producer (before a transaction ends)."""
        while self._handing:
            await asyncio.wait(list(self._handing.values()))

    async def send(self, record: OutRecord) -> asyncio.Future[Any]:
        assert self.session.producer is not None
        return await _send(self.session.producer, record)

    async def send_event(
        self, topic: str, value: bytes, *, key: bytes | None, headers: Headers | list[tuple[str, bytes]]
    ) -> asyncio.Future[Any]:
        assert self.session.events is not None
        return cast("asyncio.Future[Any]", await self.session.events.send(topic, value, key=key, headers=headers))

    async def send_outside(self, record: OutRecord) -> asyncio.Future[Any]:
        assert self.session.events is not None  # the producer itself unless exactly-once: then never transactional
        return await _send(self.session.events, record)

    def unreachable(self, error: BaseException) -> bool:
        if isinstance(error, UnknownTopicOrPartitionError | NotLeaderForPartitionError):
            self.session.stale(*self.session.known_outputs())  # an output topic went away: repair before resending
        return isinstance(error, KafkaTimeoutError | TimeoutError | OSError) or bool(getattr(error, "retriable", False))

    # -- transactions (exactly-once) -----------------------------------------------------------

    async def begin_transaction(self) -> None:
        assert self.session.producer is not None
        await self.session.producer.begin_transaction()

    async def send_offsets_to_transaction(self, offsets: Mapping[TopicPartition, int], group_id: str) -> None:
        assert self.session.producer is not None
        await self.session.producer.send_offsets_to_transaction({_tp(tp): o for tp, o in offsets.items()}, group_id)

    async def commit_transaction(self) -> None:
        assert self.session.producer is not None
        await self._handed_over()  # a batch handed over after the commit started would land outside it
        await self.session.producer.commit_transaction()

    async def abort_transaction(self) -> None:
        assert self.session.producer is not None
        await self._handed_over()  # ... or in the next transaction
        await self.session.producer.abort_transaction()


def _bare(batch: Any) -> bool:
    """True for an open, empty aiokafka ``BatchBuilder`` without serializers around its record batch builder: its
    records may be appended to that builder directly (:func:`_build_bare`)."""
    # private attributes, read with defaults: an aiokafka release without one of them takes the public path
    missing = object()
    return (type(batch) is BatchBuilder and getattr(batch, "_key_serializer", missing) is None
            and getattr(batch, "_value_serializer", missing) is None and getattr(batch, "_closed", True) is False
            and getattr(batch, "_relative_offset", None) == 0 and hasattr(batch, "_builder"))  # fmt: skip


def _build_bare(producer: Any, batch: Any, records: Sequence[OutRecord]) -> list[Any]:
    """``records`` in record batches of the producer's batch size, appended as ``BatchBuilder.append`` does (its
    ``DefaultRecordBatchBuilder.append`` at the next relative offset; a record refused closes the batch) without
    its wrapper per record: ~0.3 µs of the ~1.4 µs an output record cost to append (card records, 5 headers)."""
    builders = [batch]
    append, offset, closed = batch._builder.append, 0, False
    shared: Headers | None = None  # the client wants a list per record: one list per distinct headers tuple
    listed: list[tuple[str, bytes | None]] = []
    for r in records:
        if r.headers is not shared:
            shared, listed = r.headers, list(r.headers)
        if not closed and append(offset, r.timestamp_ms, key=r.key, value=r.value, headers=listed) is not None:
            offset += 1
            continue
        batch._relative_offset = offset
        batch.close()
        batch = producer.create_batch()  # a record always fits an empty batch
        builders.append(batch)
        append, offset = batch._builder.append, 0
        closed = append(0, r.timestamp_ms, key=r.key, value=r.value, headers=listed) is None
        if closed:
            batch.close()
        else:
            offset = 1
    batch._relative_offset = offset
    return builders


def _settle(ack: asyncio.Future[Any], delivered: asyncio.Future[Any]) -> None:
    """Give ``ack`` the outcome of the producer's ``delivered`` future."""
    if ack.done():
        return
    if delivered.cancelled():
        ack.cancel()
    elif (error := delivered.exception()) is not None:
        ack.set_exception(error)
    else:
        ack.set_result(delivered.result())


def _failed(topic: str, cause: BaseException) -> asyncio.Future[Any]:
    """A future failed with a retriable :class:`TransportError`: the batch is sent again once the topic is repaired."""
    error = TransportError(f"producing to {topic} failed on its metadata (deleted or re-partitioned?): {cause!r}")
    error.retriable = True  # type: ignore[attr-defined]
    error.__cause__ = cause
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(error)
    return future


async def _send(producer: Any, r: OutRecord) -> asyncio.Future[Any]:
    """Submit ``r`` on ``producer`` (the partitioner picks the partition unless ``r.partition`` is set)."""
    return cast(
        "asyncio.Future[Any]", await producer.send(r.topic, r.value, r.key, r.partition, headers=list(r.headers))
    )
