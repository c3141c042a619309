"""The development broker is a real Kafka: both Python clients talk to it, and it survives a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka import KafkaConsumer, KafkaProducer  # type: ignore[import-untyped,unused-ignore]

from streams.dev.broker import Broker

pytestmark = pytest.mark.kafka


async def _aio_consume(bootstrap: str, topic: str, count: int, **options: Any) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", **options)
    await consumer.start()
    values: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(values) < count:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    values.extend(record.value for record in records if record.value is not None)
        if options.get("group_id"):
            await consumer.commit()
    finally:
        await consumer.stop()
    return values


def _kp_roundtrip(bootstrap: str, topic: str, group_id: str, values: list[bytes]) -> list[bytes]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for value in values:
        producer.send(topic, value).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group_id, auto_offset_reset="earliest", consumer_timeout_ms=500
    )
    seen: list[bytes] = []
    try:
        for _ in range(60):
            seen.extend(record.value for record in consumer)
            if len(seen) >= len(values):
                break
        consumer.commit()
    finally:
        consumer.close()
    return seen


def test_aiokafka_produce_and_consume(
    kafka_broker: Broker, kafka_topic_factory: Callable[..., str], kafka_group_id: str
) -> None:
    topic = kafka_topic_factory(partitions=3)

    async def scenario() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers, acks="all")
        await producer.start()
        try:
            for i in range(10):
                await producer.send_and_wait(topic, f"m{i}".encode(), key=str(i).encode())
        finally:
            await producer.stop()
        return await _aio_consume(kafka_broker.bootstrap_servers, topic, 10, group_id=kafka_group_id)

    assert sorted(asyncio.run(scenario())) == sorted(f"m{i}".encode() for i in range(10))


def test_kafka_python_produce_and_consume(
    kafka_broker: Broker, kafka_topic_factory: Callable[..., str], kafka_group_id: str
) -> None:
    topic = kafka_topic_factory(partitions=2)
    values = [b"alpha", b"beta", b"gamma"]
    assert sorted(_kp_roundtrip(kafka_broker.bootstrap_servers, topic, kafka_group_id, values)) == sorted(values)


def test_aiokafka_idempotent_and_transactional_producers(
    kafka_broker: Broker, kafka_topic_factory: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    topic = kafka_topic_factory()
    bootstrap = kafka_broker.bootstrap_servers

    async def scenario() -> list[bytes]:
        idempotent = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
        await idempotent.start()
        try:
            await idempotent.send_and_wait(topic, b"idempotent")
        finally:
            await idempotent.stop()
        transactional = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=unique_name("txn"))
        await transactional.start()
        try:
            async with transactional.transaction():
                await transactional.send(topic, b"committed")
            await transactional.begin_transaction()
            await transactional.send(topic, b"aborted")
            await transactional.abort_transaction()
            async with transactional.transaction():
                await transactional.send(topic, b"last")
        finally:
            await transactional.stop()
        return await _aio_consume(bootstrap, topic, 3, isolation_level="read_committed")

    assert asyncio.run(scenario()) == [b"idempotent", b"committed", b"last"]


def test_broker_serves_again_after_restart(
    owned_kafka_broker: Broker, kafka_topic_factory: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    bootstrap = owned_kafka_broker.bootstrap_servers
    topic = kafka_topic_factory()
    assert _kp_roundtrip(bootstrap, topic, unique_name("before"), [b"before"]) == [b"before"]

    owned_kafka_broker.restart()

    assert owned_kafka_broker.bootstrap_servers == bootstrap  # same port: clients reconnect
    # Data written before the restart is still there, and the broker takes new writes and groups.
    assert _kp_roundtrip(bootstrap, topic, unique_name("after"), [b"after"]) == [b"before", b"after"]

    async def aio_after_restart() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"aio")
        finally:
            await producer.stop()
        return await _aio_consume(bootstrap, topic, 3, group_id=unique_name("aio"))

    assert asyncio.run(aio_after_restart()) == [b"before", b"after", b"aio"]
