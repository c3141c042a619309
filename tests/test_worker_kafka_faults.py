"""Hostile producers, outputs that do not fit, and topic faults against a real broker (issue 8 §3–§5)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaProducer

from tests.test_worker_kafka import (  # noqa: F401 (feature_stream: a fixture)
    Stream,
    check_routing,
    dataset,
    feature_stream,
    make_worker,
    outputs,
    wait_committed,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_source_batches_are_consumed(codec: str, feature_stream: Callable[..., Stream]) -> None:  # noqa: F811
    stream = feature_stream(1)
    msgs, invalid, undecodable = dataset(300, seed=13)

    async def scenario() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=stream.bootstrap, compression_type=codec, linger_ms=20,
                                    max_request_size=4_000_000)  # fmt: skip
        await producer.start()
        try:
            await asyncio.gather(*[await producer.send(stream.topic, v, key=k, headers=h) for k, v, h in msgs])
        finally:
            await producer.stop()
        worker = make_worker(stream.settings)
        task = asyncio.create_task(worker.run())
        try:
            await wait_committed(stream.bootstrap, stream.group, stream.topic, timeout=60)
        finally:
            worker.stop()
            await task
        check_routing(await outputs(stream.bootstrap, stream.topic), msgs, invalid=invalid,
                      undecodable=undecodable, exact=True)  # fmt: skip

    asyncio.run(scenario())
