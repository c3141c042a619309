"""A Kafka cluster and one consumer group in memory: the :class:`~streams.kafka.transport.Transport` for unit tests.

Modelled on bytewax's ``TestingSource``/``TestingSink`` and httpx's ``MockTransport``: the
worker runs unchanged against it, and a test drives what Kafka would do::

    transport = InMemoryTransport(sources=["features"], partitions={"features": 2})
    transport.produce("features", b'{"id": 1}', partition=0)
    worker = BatchWorker(settings, bindings, worker_id="w1", transport=transport)

* topics are lists of :class:`~streams.pipeline.records.Message` per partition (offsets are
  list positions); output topics are created on first use with ``default_partitions``;
* produced records are appended when *acknowledged*: immediately, or, with
  :meth:`hold_acks`, only on :meth:`ack` (or failed with :meth:`fail_held`);
  :attr:`produce_failures` fails the next submissions, :attr:`poll_failures` the next polls;
* transactions: records sent between ``begin_transaction`` and its commit are appended at the commit (dropped
  by an abort); once a transaction was begun the producer is transactional, and, as aiokafka's, it refuses a
  record sent while none is open (:class:`NotInTransactionError`) unless it goes by ``send_outside``;
* the group's committed offsets are :attr:`committed`, every commit call is in
  :attr:`commits`; :attr:`commit_failures` makes the next commits raise;
* assignment: every partition of the present sources at the first poll; :meth:`rebalance`
  schedules a new assignment, applied at the next poll with the eager protocol (as aiokafka's:
  every owned partition revoked, then the whole new assignment given, read from the committed offsets);
* :meth:`wait_for` awaits a condition on the cluster (for tests, with a timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streams.errors import CommitRefusedError, TransportError
from streams.kafka.observers import WorkerObserver
from streams.kafka.transport import AssignmentCallbacks, TopicPartition
from streams.pipeline.fitting import BATCH_OVERHEAD, record_size
from streams.pipeline.records import Headers, Message, OutRecord

__all__ = ["Ack", "InMemoryTransport", "MessageSizeTooLargeError", "NotInTransactionError"]


class NotInTransactionError(Exception):
    """A record sent on a transactional producer outside a transaction (aiokafka's ``IllegalOperation``)."""


class MessageSizeTooLargeError(Exception):
    """The broker refused a record batch larger than the topic's ``max.message.bytes`` (not retriable)."""

    retriable = False


@dataclass(frozen=True, slots=True)
class Ack:
    """What an acknowledged submission resolves to (like aiokafka's ``RecordMetadata``)."""

    topic: str
    partition: int
    offset: int  # of the first record appended


@dataclass(slots=True)
class _Held:
    future: asyncio.Future[Any]
    topic: str
    partition: int
    records: list[OutRecord]


class InMemoryTransport:
    """Topics, a consumer group and a producer in memory; see the module docstring."""

    def __init__(
        self, *, sources: Iterable[str], partitions: Mapping[str, int] | None = None, default_partitions: int = 1,
        observer: WorkerObserver | None = None,
    ) -> None:  # fmt: skip
        """``observer`` hears of subscriptions (give it the worker's: ``transport.observer = worker.observers``)."""
        self.sources = tuple(sources)
        self.observer = observer
        self.default_partitions = default_partitions
        self.logs: dict[str, list[list[Message]]] = {t: [[] for _ in range(n)] for t, n in (partitions or {}).items()}
        self.committed: dict[TopicPartition, int] = {}
        self.commits: list[dict[TopicPartition, int]] = []
        self.assignment: set[TopicPartition] = set()
        self.paused: set[TopicPartition] = set()
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.produce_failures: deque[BaseException] = deque()
        self.commit_failures: deque[BaseException] = deque()
        self.poll_failures: deque[BaseException] = deque()
        #: ``max.message.bytes`` per topic (else ``default_limit``, Kafka's default): larger batches are refused
        self.limits: dict[str, int] = {}
        self.default_limit = 1_048_588
        self.closed = False
        self._positions: dict[TopicPartition, int] = {}
        self._callbacks: AssignmentCallbacks | None = None
        self._next_assignment: set[TopicPartition] | None = None
        self._held: list[_Held] | None = None
        self._transaction: list[tuple[str, int, list[OutRecord]]] | None = None
        self._transactional = False  # a transaction was begun: the producer is transactional from then on
        self._tx_offsets: dict[TopicPartition, int] = {}
        self._changed: asyncio.Event | None = None
        self._subscribed: tuple[str, ...] = ()

    # -- driving the cluster from a test ----------------------------------------------------------

    def produce(self, topic: str, value: bytes | None, *, key: bytes | None = None, headers: Headers = (),
                partition: int = 0, timestamp_ms: int | None = None) -> Message:  # fmt: skip
        """Append one record to a (source) topic, as another producer would; returns it with its offset."""
        log = self._log(topic)[partition]
        m = Message(topic, partition, len(log), value, key, headers, timestamp_ms)
        log.append(m)
        self._wake()
        return m

    def records(self, topic: str, partition: int | None = None) -> list[Message]:
        """What a topic holds (every partition in order, or one)."""
        parts = self.logs.get(topic, [])
        return [m for p, log in enumerate(parts) if partition in (None, p) for m in log]

    def hold_acks(self) -> None:
        """From now on, submissions stay unacknowledged until :meth:`ack` or :meth:`fail_held`."""
        if self._held is None:
            self._held = []

    def ack(self) -> int:
        """Acknowledge every held submission (its records are appended); stop holding. Returns how many."""
        held, self._held = self._held or [], None
        for h in held:
            if not h.future.done():
                h.future.set_result(self._append(h.topic, h.partition, h.records))
        return len(held)

    def fail_held(self, error: BaseException) -> int:
        """Fail every held submission with ``error`` (nothing appended); stop holding. Returns how many."""
        held, self._held = self._held or [], None
        for h in held:
            if not h.future.done():
                h.future.set_exception(error)
        return len(held)

    @property
    def held(self) -> int:
        return len(self._held or ())

    def rebalance(self, assignment: Iterable[TopicPartition]) -> None:
        """The group's next assignment for this member, applied at the next poll (revoke, then assign)."""
        self._next_assignment = {TopicPartition(*tp) for tp in assignment}
        self._wake()

    def partitions(self, topic: str) -> list[TopicPartition]:
        return [TopicPartition(topic, p) for p in range(len(self._log(topic)))]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Poll ``condition`` every few milliseconds; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            await asyncio.sleep(0.005)

    # -- Transport: connection ---------------------------------------------------------------------

    @property
    def subscribed(self) -> tuple[str, ...]:
        return self._subscribed

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(t for t in self.sources if t not in self.logs)

    @property
    def connected(self) -> bool:
        return self._callbacks is not None and not self.closed

    async def connect(self, callbacks: AssignmentCallbacks) -> bool:
        self._callbacks, self.closed = callbacks, False
        self._subscribed = tuple(sorted(t for t in self.sources if t in self.logs))
        self._next_assignment = {tp for t in self._subscribed for tp in self.partitions(t)}
        if self.observer is not None:
            self.observer.on_subscribed(self._subscribed, self.missing)
        return True

    async def probe(self, callbacks: AssignmentCallbacks) -> None:
        appeared = [t for t in self.sources if t in self.logs and t not in self._subscribed]
        if appeared:
            self._subscribed = tuple(sorted((*self._subscribed, *appeared)))
            if self.observer is not None:
                self.observer.on_subscribed(self._subscribed, self.missing)
            self.rebalance({*self.assignment, *(tp for t in appeared for tp in self.partitions(t))})

    async def close(self) -> None:
        self.closed = True

    # -- Transport: consuming ------------------------------------------------------------------------

    async def poll(self, max_records: int, timeout_ms: int) -> dict[TopicPartition, list[Message]]:
        await self._apply_rebalance()
        if self.poll_failures:  # a fetch the client cannot complete (an unknown codec, an auth error...)
            raise TransportError(f"poll failed: {self.poll_failures[0]!r}") from self.poll_failures.popleft()
        out = self._fetch(max_records)
        if not out:
            changed = self._event()
            changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout_ms / 1000)
            await self._apply_rebalance()
            out = self._fetch(max_records)
        return out

    def _fetch(self, max_records: int) -> dict[TopicPartition, list[Message]]:
        out: dict[TopicPartition, list[Message]] = {}
        budget = max_records
        for tp in sorted(self.assignment - self.paused):
            log, pos = self.logs[tp.topic][tp.partition], self._positions.get(tp, 0)
            taken = log[pos : pos + budget]
            if taken:
                out[tp] = taken
                self._positions[tp] = pos + len(taken)
                budget -= len(taken)
            if budget <= 0:
                break
        return out

    async def _apply_rebalance(self) -> None:
        wanted, self._next_assignment = self._next_assignment, None
        if wanted is None or self._callbacks is None:
            return
        # the eager protocol, as aiokafka's: every partition is revoked, then the whole new assignment given,
        # each resuming from the group's committed offset
        revoked = set(self.assignment)
        await self._callbacks.partitions_revoked(revoked)
        self.assignment, self.paused = set(), set()
        for tp in wanted:
            self._positions[tp] = self.committed.get(tp, 0)
        self.assignment = set(wanted)
        await self._callbacks.partitions_assigned(set(wanted))

    def highwater(self, tp: TopicPartition) -> int | None:
        parts = self.logs.get(tp.topic)
        return len(parts[tp.partition]) if parts is not None else None

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((TopicPartition(*tp), offset))
        self._positions[TopicPartition(*tp)] = offset

    def pause(self, tp: TopicPartition) -> None:
        self.paused.add(TopicPartition(*tp))

    def resume(self, tp: TopicPartition) -> None:
        self.paused.discard(TopicPartition(*tp))
        self._wake()

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if self.commit_failures:
            raise self.commit_failures.popleft()
        foreign = [tp for tp in offsets if tp not in self.assignment]
        if foreign:
            raise CommitRefusedError(f"partitions {sorted(foreign)} are not assigned to this member")
        done = {TopicPartition(*tp): o for tp, o in offsets.items()}
        self.commits.append(done)
        self.committed.update(done)

    # -- Transport: producing ------------------------------------------------------------------------

    async def partition_count(self, topic: str) -> int:
        return len(self._log(topic))

    async def max_message_bytes(self, topic: str) -> int:
        return self.limits.get(topic, self.default_limit)

    async def send_batch(self, topic: str, partition: int, records: Sequence[OutRecord]) -> list[asyncio.Future[Any]]:
        limit = self.limits.get(topic, self.default_limit)  # cut into record batches at the limit, as aiokafka's
        chunks: list[list[OutRecord]] = [[]]
        size = BATCH_OVERHEAD
        for r in records:
            n = record_size(r)
            if chunks[-1] and size + n > limit:
                chunks.append([])
                size = BATCH_OVERHEAD
            chunks[-1].append(r)
            size += n
        return [self._submit(topic, partition, chunk) for chunk in chunks]

    async def send(self, record: OutRecord) -> asyncio.Future[Any]:
        return self._submit(record.topic, self._partition_of(record), [record])

    async def send_event(
        self, topic: str, value: bytes, *, key: bytes | None, headers: Headers | list[tuple[str, bytes]]
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(self._append(topic, 0, [OutRecord(topic, value, key, tuple(headers))]))
        return future

    async def send_outside(self, record: OutRecord) -> asyncio.Future[Any]:
        return self._submit(record.topic, self._partition_of(record), [record], outside=True)

    def _partition_of(self, record: OutRecord) -> int:
        """``record.partition``, else the key's hash over the topic's partitions (0 without a key)."""
        n = len(self._log(record.topic))
        return record.partition if record.partition is not None else hash(record.key) % n if record.key else 0

    def unreachable(self, error: BaseException) -> bool:
        return isinstance(error, TimeoutError | OSError) or bool(getattr(error, "retriable", False))

    def _submit(
        self, topic: str, partition: int, records: list[OutRecord], *, outside: bool = False
    ) -> asyncio.Future[Any]:
        if self._transactional and self._transaction is None and not outside:
            raise NotInTransactionError(
                f"a record for {topic} was sent on the transactional producer while no transaction was open (aiokafka "
                "raises IllegalOperation): send it in a transaction, or with send_outside"
            )
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        limit = self.limits.get(topic, self.default_limit)
        size = BATCH_OVERHEAD + sum(record_size(r) for r in records)
        if self.produce_failures:
            future.set_exception(self.produce_failures.popleft())
        elif size > limit:
            future.set_exception(MessageSizeTooLargeError(f"a batch of {size} bytes for {topic}, over {limit}"))
        elif self._transaction is not None and not outside:
            self._transaction.append((topic, partition, records))
            future.set_result(Ack(topic, partition, -1))
        elif self._held is not None:
            self._held.append(_Held(future, topic, partition, records))
        else:
            future.set_result(self._append(topic, partition, records))
        return future

    # -- Transport: transactions ---------------------------------------------------------------------

    async def begin_transaction(self) -> None:
        self._transaction, self._transactional = [], True

    async def send_offsets_to_transaction(self, offsets: Mapping[TopicPartition, int], group_id: str) -> None:
        self._tx_offsets = {TopicPartition(*tp): o for tp, o in offsets.items()}

    async def commit_transaction(self) -> None:
        writes, self._transaction = self._transaction or [], None
        for topic, partition, records in writes:
            self._append(topic, partition, records)
        offsets, self._tx_offsets = self._tx_offsets, {}
        if offsets:
            self.commits.append(offsets)
            self.committed.update(offsets)

    async def abort_transaction(self) -> None:
        self._transaction, self._tx_offsets = None, {}

    # -- internals -----------------------------------------------------------------------------------

    def _log(self, topic: str) -> list[list[Message]]:
        if topic not in self.logs:
            self.logs[topic] = [[] for _ in range(self.default_partitions)]
        return self.logs[topic]

    def _append(self, topic: str, partition: int, records: list[OutRecord]) -> Ack:
        log = self._log(topic)[partition]
        first = len(log)
        for r in records:
            log.append(Message(topic, partition, len(log), r.value, r.key, r.headers, r.timestamp_ms))
        return Ack(topic, partition, first)

    def _event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
