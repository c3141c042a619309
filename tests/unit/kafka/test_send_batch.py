"""``AIOKafkaTransport.send_batch`` on aiokafka's real batch builder (no broker): what reaches the wire.

The hot path lists each distinct headers tuple once and sizes records only when the topic's limit is below the
producer's batch size; these tests read the built record batches back and check every record, in order.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.memory_records import MemoryRecords

from streams.kafka.aiokafka_transport import AIOKafkaTransport
from streams.pipeline.records import OutRecord
from streams.settings import Settings

TOPIC = "out.validated"
BATCH_BYTES = 16_384  # the smallest producer_batch_bytes the settings accept


class _Producer:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(BATCH_BYTES, 0)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> asyncio.Future[Any]:
        assert (topic, partition) == (TOPIC, 2)
        self.sent.append(bytes(batch._build()))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


class _Session:
    def __init__(self, limit: int | None) -> None:
        self.producer = _Producer()
        self.limits = {TOPIC: limit} if limit is not None else {}


def transport_with(limit: int | None) -> tuple[AIOKafkaTransport, _Producer]:
    transport = AIOKafkaTransport.__new__(AIOKafkaTransport)
    transport.settings = Settings(producer_batch_bytes=BATCH_BYTES)
    session = _Session(limit)
    transport.session = session  # type: ignore[assignment]
    transport._handing = {}
    return transport, session.producer


def read_back(batches: list[bytes]) -> list[tuple[bytes | None, bytes | None, int, tuple[tuple[str, bytes], ...]]]:
    out = []
    for raw in batches:
        records = MemoryRecords(raw)
        while records.has_next():
            batch = records.next_batch()
            assert batch is not None
            out += [(r.key, r.value, r.timestamp, tuple(r.headers)) for r in batch]
    return out


def outputs(n: int) -> list[OutRecord]:
    """Records whose headers are shared tuples (as the binding builds them) and, every 7th, a tuple of their own."""
    ours = (("qstreams.contract", b"card@1.0.0"), ("qstreams.contract.sha256", b"a" * 64))
    out = []
    for i in range(n):
        headers = ours if i % 7 else (("trace-id", str(i).encode()), *ours)
        out.append(OutRecord(TOPIC, b"v" * (300 + i % 50) + str(i).encode(), f"k{i}".encode(), headers, 1_000 + i))
    return out


def sent(limit: int | None, records: list[OutRecord]) -> tuple[list[bytes], list[Any]]:
    transport, producer = transport_with(limit)

    async def go() -> list[asyncio.Future[Any]]:
        futures = await transport.send_batch(TOPIC, 2, records)
        await asyncio.gather(*futures)  # handed to the producer in the background
        return futures

    futures = asyncio.run(go())
    assert len(futures) == len(producer.sent)
    return producer.sent, read_back(producer.sent)


def expected(records: list[OutRecord]) -> list[Any]:
    return [(r.key, r.value, r.timestamp_ms, r.headers) for r in records]


def test_every_record_reaches_the_wire_in_order_with_its_own_headers() -> None:
    records = outputs(400)
    for limit in (None, 1_048_588):  # unknown, or above the producer's batch size: the builder cuts the batches
        batches, got = sent(limit, records)
        assert got == expected(records)
        assert len(batches) > 1 and all(len(b) <= BATCH_BYTES for b in batches)


def test_a_topic_limit_below_the_producer_batch_size_cuts_the_batches() -> None:
    records = outputs(400)
    batches, got = sent(4_000, records)
    assert got == expected(records)
    assert all(len(b) <= 4_000 for b in batches)
    assert len(batches) > len(sent(None, records)[0])


def test_a_record_larger_than_the_limit_travels_alone() -> None:
    records = outputs(5)
    records[2] = OutRecord(TOPIC, b"x" * 5_000, b"big", (), 7)
    batches, got = sent(4_000, records)
    assert got == expected(records)
    assert [len(read_back([b])) for b in batches] == [2, 1, 2]


def appended_one_by_one(records: list[OutRecord]) -> list[tuple[bytes, int]]:
    """The record batches ``BatchBuilder.append`` (aiokafka's public way) builds of ``records``, with their counts."""
    builders = [BatchBuilder(BATCH_BYTES, 0)]
    for r in records:
        if builders[-1].append(key=r.key, value=r.value, timestamp=r.timestamp_ms, headers=list(r.headers)) is None:
            builders.append(BatchBuilder(BATCH_BYTES, 0))
            builders[-1].append(key=r.key, value=r.value, timestamp=r.timestamp_ms, headers=list(r.headers))
    return [(bytes(b._build()), b.record_count()) for b in builders]


def test_records_appended_to_the_record_batch_builder_directly_build_the_very_batches_of_batch_builder_append() -> None:
    records = outputs(400)
    transport, producer = transport_with(None)
    builders = transport._build(producer, TOPIC, records)
    assert len(builders) > 1
    assert [b._closed for b in builders] == [True] * (len(builders) - 1) + [False]  # closed when full, as append does
    assert [(bytes(b._build()), b.record_count()) for b in builders] == appended_one_by_one(records)


def test_a_batch_builder_with_a_serializer_is_appended_to_through_its_append() -> None:
    class Serializing(_Producer):
        def create_batch(self) -> BatchBuilder:
            return BatchBuilder(BATCH_BYTES, 0, value_serializer=lambda v: v + b"!")

    transport, _ = transport_with(None)
    records = outputs(3)
    builders = transport._build(Serializing(), TOPIC, records)
    assert [v for _, v, _, _ in read_back([bytes(b._build()) for b in builders])] == [r.value + b"!" for r in records]


def test_a_batch_builder_without_an_expected_private_attribute_takes_the_public_path() -> None:
    """Direct appends read aiokafka's private attributes: a release without one of them is appended to through
    ``BatchBuilder.append``, never an AttributeError on every send."""
    from streams.kafka.aiokafka_transport import _bare

    assert _bare(BatchBuilder(BATCH_BYTES, 0))
    for name in ("_key_serializer", "_value_serializer", "_closed", "_relative_offset", "_builder"):
        batch = BatchBuilder(BATCH_BYTES, 0)
        delattr(batch, name)
        assert not _bare(batch), name
