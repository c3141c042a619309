"""``AIOKafkaTransport.send_batch`` hands record batches to the producer in the background (no broker).

aiokafka's ``send_batch`` waits until the partition's previous batch left for the broker, one produce request
in flight per broker. The fake producer here behaves that way: a partition holds one undrained batch, and a
batch drains only when the test says so (a round trip). The transport must queue a call's batches at once, keep
their order per partition, settle the futures with the producer's, and end a transaction only once every batch
was handed over (a batch handed over after the commit started would land outside it, or in the next one).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError
from aiokafka.producer.message_accumulator import BatchBuilder

from streams.errors import TransportError
from streams.kafka.aiokafka_transport import AIOKafkaTransport
from streams.pipeline.records import OutRecord
from streams.settings import Settings

TOPIC = "out.validated"
BATCH_BYTES = 16_384


class _Producer:
    """One undrained batch per partition (aiokafka's accumulator); ``drain`` sends them (a round trip)."""

    def __init__(self) -> None:
        self.undrained: dict[int, asyncio.Future[None]] = {}
        self.handed: list[tuple[int, int]] = []  # (partition, records in the batch), in hand-over order
        self.delivered: list[asyncio.Future[Any]] = []
        self.at_commit: list[tuple[int, int]] | None = None
        self.fail_on: int | None = None  # the n-th hand-over raises

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(BATCH_BYTES, 0)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> asyncio.Future[Any]:
        while partition in self.undrained:
            await self.undrained[partition]
        if self.fail_on is not None and len(self.handed) == self.fail_on:
            raise KafkaTimeoutError()
        assert batch.closed(), "an open batch lingers linger_ms in the accumulator before it is sent"
        self.handed.append((partition, batch.record_count()))
        self.undrained[partition] = asyncio.get_running_loop().create_future()
        delivered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.delivered.append(delivered)
        return delivered

    def drain(self) -> None:
        for waiter in self.undrained.values():
            waiter.set_result(None)
        self.undrained = {}
        for i, delivered in enumerate(self.delivered):
            if not delivered.done():
                delivered.set_result(i)

    async def commit_transaction(self) -> None:
        self.at_commit = list(self.handed)

    async def abort_transaction(self) -> None:
        self.at_commit = list(self.handed)


class _Session:
    def __init__(self) -> None:
        self.producer = _Producer()
        self.limits: dict[str, int] = {}
        self.staled: list[str] = []

    def stale(self, *topics: str) -> None:
        self.staled += topics


def transport_and_producer() -> tuple[AIOKafkaTransport, _Producer]:
    transport = AIOKafkaTransport.__new__(AIOKafkaTransport)
    transport.settings = Settings(producer_batch_bytes=BATCH_BYTES)
    session = _Session()
    transport.session = session  # type: ignore[assignment]
    transport._handing = {}
    return transport, session.producer


def records(n: int, tag: str = "") -> list[OutRecord]:
    return [OutRecord(TOPIC, b"v" * 300 + f"{tag}{i}".encode(), None, (), 1_000 + i) for i in range(n)]


async def drained_until(producer: _Producer, done: Any) -> None:
    """Drain (one round trip at a time) until ``done()``."""
    for _ in range(100):
        await asyncio.sleep(0)
        if done():
            return
        producer.drain()
    raise AssertionError("never done")


def test_a_call_returns_before_its_batches_leave_and_they_are_handed_over_in_order() -> None:
    async def scenario() -> None:
        transport, producer = transport_and_producer()
        # three record batches for one partition: with the client's send_batch awaited one by one, this call
        # would wait for two round trips (nothing drains here until the test says so)
        acks = await asyncio.wait_for(transport.send_batch(TOPIC, 2, records(120)), 1.0)
        assert len(acks) >= 3 and not any(a.done() for a in acks)
        other = await asyncio.wait_for(transport.send_batch(TOPIC, 1, records(10)), 1.0)  # another partition
        await drained_until(producer, lambda: all(a.done() for a in (*acks, *other)))
        assert [p for p, _ in producer.handed if p == 2] == [2] * len(acks)
        assert sum(n for p, n in producer.handed if p == 2) == 120
        assert [a.result() for a in acks] == sorted(a.result() for a in acks)  # in hand-over order

    asyncio.run(scenario())


def test_a_second_call_for_a_partition_waits_for_the_first_to_be_handed_over_and_keeps_the_order() -> None:
    async def scenario() -> None:
        transport, producer = transport_and_producer()
        first = await asyncio.wait_for(transport.send_batch(TOPIC, 0, records(120, "a")), 1.0)
        second = asyncio.ensure_future(transport.send_batch(TOPIC, 0, records(5, "b")))
        await asyncio.sleep(0.01)
        assert not second.done()  # back-pressure: one call queued per partition
        await drained_until(producer, second.done)
        later = second.result()
        await drained_until(producer, lambda: all(a.done() for a in (*first, *later)))
        assert [n for _, n in producer.handed][-1] == 5 and sum(n for _, n in producer.handed) == 125
        assert max(a.result() for a in first) < later[0].result()

    asyncio.run(scenario())


@pytest.mark.parametrize("end", ["commit_transaction", "abort_transaction"])
def test_a_transaction_ends_only_after_every_batch_was_handed_over(end: str) -> None:
    async def scenario() -> None:
        transport, producer = transport_and_producer()
        acks = [
            *await asyncio.wait_for(transport.send_batch(TOPIC, 0, records(120)), 1.0),
            *await asyncio.wait_for(transport.send_batch(TOPIC, 1, records(9)), 1.0),
        ]
        commit = asyncio.ensure_future(getattr(transport, end)())
        await drained_until(producer, commit.done)
        assert producer.at_commit is not None and len(producer.at_commit) == len(acks)
        assert sum(n for _, n in producer.at_commit) == 129

    asyncio.run(scenario())


def test_a_batch_the_producer_refuses_fails_its_futures_and_the_later_ones_of_its_call() -> None:
    async def scenario() -> None:
        transport, producer = transport_and_producer()
        producer.fail_on = 1  # the second batch of the call
        acks = await asyncio.wait_for(transport.send_batch(TOPIC, 0, records(120)), 1.0)
        await drained_until(producer, lambda: all(a.done() for a in acks))
        assert acks[0].result() == 0
        for ack in acks[1:]:
            with pytest.raises(TransportError) as failed:
                ack.result()
            assert getattr(failed.value, "retriable", False) and isinstance(failed.value.__cause__, KafkaTimeoutError)
        assert transport.session.staled == [TOPIC]  # type: ignore[attr-defined]

    asyncio.run(scenario())
