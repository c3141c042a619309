"""On a slow feed the worker's batches fill up to ``batch_max_latency_ms`` (real broker, aiokafka transport).

Asserts on batch sizes only, with generous margins (never on durations): at ~300 records/s and
200 ms a batch should hold ~60 records; the poll before batches filled handed over ~3.
"""

from __future__ import annotations

import asyncio
import statistics
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streams.kafka.observers import WorkerObserver
from streams.kafka.transport import TopicPartition
from streams.settings import Mode, Settings

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[3]
CONTRACT = ROOT / "contracts" / "card_transactions.odcs.yaml"


class BatchSizes(WorkerObserver):
    def __init__(self) -> None:
        self.sizes: list[int] = []

    def on_batch_end(self, tp: TopicPartition, binding: Any, messages: int, result: Any, lag: int | None) -> None:
        self.sizes.append(messages)


async def slow_feed(bootstrap: str, topic: str, records: int, rate: float) -> None:
    """``records`` feature records at a fixed ``rate`` per second, each sent on its own."""
    from streams.testing import generate_feature_records

    values = [orjson.dumps(r) for r in generate_feature_records(records, seed=3).records]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=1)
    await producer.start()
    try:
        loop = asyncio.get_running_loop()
        start, futures = loop.time(), []
        for i, value in enumerate(values):
            await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
            futures.append(await producer.send(topic, value, key=str(i).encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@pytest.mark.parametrize("mode", ["monitor", "eos"])
def test_slow_feed_batches_fill_to_the_latency_bound(
    mode: str, kafka_broker: Any, kafka_topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    from streams.kafka.worker import BatchWorker, build_bindings

    topic = kafka_topic_factory(partitions=1)
    text = CONTRACT.read_text().replace("physicalName: features.card-transactions.v1", f"physicalName: {topic}")
    (tmp_path / "c.odcs.yaml").write_text(text)
    settings = Settings(
        bootstrap_servers=kafka_broker.bootstrap_servers, contracts_dir=tmp_path, app_id=f"fill-{uuid.uuid4().hex}",
        mode=Mode.GATE if mode == "eos" else Mode.MONITOR, exactly_once=mode == "eos",
        events_topic=f"{topic}.events", batch_max_latency_ms=200, web_port=0, topic_partitions=1,
    )  # fmt: skip
    records, sizes = 600, BatchSizes()

    async def scenario() -> None:
        worker = BatchWorker(settings, build_bindings(settings), worker_id="fill", observers=[sizes])
        task = asyncio.create_task(worker.run())
        try:
            while not worker._owned:  # assigned: the feed starts on a consuming worker
                assert not task.done(), task
                await asyncio.sleep(0.05)
            await slow_feed(settings.bootstrap_servers, topic, records, rate=300)
            while sum(worker.committed.values()) < records:
                assert not task.done(), task
                await asyncio.sleep(0.05)
        finally:
            worker.stop()
            await asyncio.wait_for(task, 30)

    asyncio.run(asyncio.wait_for(scenario(), 100))
    assert sum(sizes.sizes) >= records
    # ~60 expected (300/s x 200 ms); the poll before this change gave 11 (monitor) and 24 (exactly-once: a
    # transaction per poll) on this feed, on a loaded 2-core machine
    assert statistics.mean(sizes.sizes) >= 40, sizes.sizes
