"""The seam between the batch worker and a Kafka client: what :class:`~streams.kafka.batches.BatchWorker` needs.

Two implementations: :class:`streams.kafka.aiokafka_transport.AIOKafkaTransport` (the real
client: one consumer in the worker's group, one idempotent producer) and
:class:`streams.testing.transport.InMemoryTransport` (a cluster in a dict, for unit tests of
commit-after-ack, retries, revoke and rebalance without a broker).

Offsets are plain ints (the *next* offset to read, as Kafka commits them). Records cross the
seam as the pipeline's :class:`~streams.pipeline.records.Message` and
:class:`~streams.pipeline.records.OutRecord`. Client failures cross it as
:class:`~streams.errors.TransportError` (and :class:`~streams.errors.CommitRefusedError` when
the group refuses a commit during a rebalance); a produce failure is the exception of the
future ``send_batch``/``send`` returned, which :meth:`Transport.unreachable` classifies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from streams.pipeline.records import Headers, Message, OutRecord

__all__ = ["AssignmentCallbacks", "TopicPartition", "Transport"]


class TopicPartition(NamedTuple):
    """A partition of a topic (equal to, and hashed like, aiokafka's ``TopicPartition``)."""

    topic: str
    partition: int


class AssignmentCallbacks(Protocol):
    """What a transport calls when the group assigns or revokes partitions (before it consumes again)."""

    async def partitions_assigned(self, assigned: set[TopicPartition]) -> None: ...

    async def partitions_revoked(self, revoked: set[TopicPartition]) -> None: ...


class Transport(Protocol):
    """Consume batches, produce batches, commit offsets; assignment changes arrive through the callbacks."""

    @property
    def subscribed(self) -> tuple[str, ...]:
        """Source topics consumed now."""
        ...

    @property
    def missing(self) -> tuple[str, ...]:
        """Bound source topics that do not exist (yet)."""
        ...

    @property
    def connected(self) -> bool:
        """True once :meth:`connect` succeeded (until :meth:`close`)."""
        ...

    async def connect(self, callbacks: AssignmentCallbacks) -> bool:
        """Ensure topics, start the clients, subscribe; False when asked to stop before connecting."""
        ...

    async def probe(self, callbacks: AssignmentCallbacks) -> None:
        """Check the cluster answers and subscribe to source topics that appeared since."""
        ...

    async def poll(self, max_records: int, timeout_ms: int) -> dict[TopicPartition, list[Message]]:
        """The next records of the assigned, unpaused partitions (at most ``max_records``), in offset order."""
        ...

    def highwater(self, tp: TopicPartition) -> int | None:
        """The partition's end offset as last seen, if known."""
        ...

    def seek(self, tp: TopicPartition, offset: int) -> None: ...

    def pause(self, tp: TopicPartition) -> None: ...

    def resume(self, tp: TopicPartition) -> None: ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit the group's next offsets; raises ``CommitRefusedError`` or ``TransportError``."""
        ...

    async def partition_count(self, topic: str) -> int: ...

    async def max_message_bytes(self, topic: str) -> int:
        """The largest record batch ``topic`` accepts (its ``max.message.bytes``); never raises (a default then)."""
        ...

    async def send_batch(self, topic: str, partition: int, records: Sequence[OutRecord]) -> list[asyncio.Future[Any]]:
        """Submit ``records`` to one partition (in as many record batches as needed); futures resolve on ack."""
        ...

    async def send(self, record: OutRecord) -> asyncio.Future[Any]:
        """Submit one record (the partitioner picks the partition unless ``record.partition`` is set)."""
        ...

    async def send_event(
        self, topic: str, value: bytes, *, key: bytes | None, headers: Headers | list[tuple[str, bytes]]
    ) -> asyncio.Future[Any]:
        """Submit a lifecycle event, never inside a transaction."""
        ...

    async def send_outside(self, record: OutRecord) -> asyncio.Future[Any]:
        """Submit one record of the worker's own, never inside a transaction (as :meth:`send` otherwise): what
        observers publish on their own schedule (stream time's heartbeats, window summaries, ``closed`` markers).
        An exactly-once worker's producer refuses a record outside a transaction, and one inside the transaction
        of a poll would be lost with it when it aborts."""
        ...

    def unreachable(self, error: BaseException) -> bool:
        """True when a produce failure means "the cluster is away or busy" (retried without limit)."""
        ...

    async def begin_transaction(self) -> None: ...

    async def send_offsets_to_transaction(self, offsets: Mapping[TopicPartition, int], group_id: str) -> None: ...

    async def commit_transaction(self) -> None: ...

    async def abort_transaction(self) -> None: ...

    async def close(self) -> None: ...
