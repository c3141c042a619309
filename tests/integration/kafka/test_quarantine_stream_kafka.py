"""quarantine-stream on the real broker: two workers in one group follow the compacted control topic; while a
policy's record is engaged every record of the binding goes to quarantine (reason ``policy:<name>``), after the
tombstone valid records are forwarded again. The control record is the one the policy agent writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streams.kafka.worker import BatchWorker, build_bindings
from streams.policies.control import control_record
from tests.integration.kafka.test_stream_time_kafka import wait_for
from tests.integration.kafka.test_worker_kafka import outputs, produce, settings_for, wait_committed
from tests.unit.policies.conftest import CONTRACT

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(150)]


def test_two_workers_quarantine_an_engaged_binding_until_released(
    kafka_broker: Any, kafka_topic_factory: Callable[..., str], kafka_group_id: str, tmp_path: Path,
    unique_name: Callable[[str], str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from streams.cli.policies import worker_observers

    bootstrap = kafka_broker.bootstrap_servers
    topic = kafka_topic_factory(partitions=2, prefix="payments")
    control_topic = unique_name("control")
    monkeypatch.setenv("STREAMS_POLICY_CONTROL_TOPIC", control_topic)
    directory = tmp_path / "contracts"
    directory.mkdir()
    (directory / "p.odcs.yaml").write_text(CONTRACT.replace("physicalName: shop.payments.v1", f"physicalName: {topic}"))
    settings = settings_for(bootstrap, directory, kafka_group_id, f"{topic}.events", stream_time=False)
    engage = control_record(control_topic, "urn:test:payments", "payments", "window-failing", engaged=True,
                            incident="ab" * 16, since="2026-03-01T12:00:00Z")  # fmt: skip
    release = control_record(control_topic, "urn:test:payments", "payments", "window-failing", engaged=False,
                             incident="ab" * 16, since="2026-03-01T12:00:00Z")  # fmt: skip

    def records(first: int, n: int) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
        return [(f"k{i}".encode(), orjson.dumps({"id": f"r{i}", "amount": 10.0}), []) for i in range(first, first + n)]

    async def control(record: Any) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(record.topic, record.value, key=record.key)
        finally:
            await producer.stop()

    def worker(name: str) -> BatchWorker:
        s = settings.model_copy(update={"worker_id": name})
        bindings = build_bindings(s)
        return BatchWorker(s, bindings, worker_id=name, observers=worker_observers(s, bindings, name))

    async def scenario() -> None:
        from streams.policies.config import PolicySettings
        from streams.policies.runner import ensure_policy_topics

        await ensure_policy_topics(settings, PolicySettings(control_topic=control_topic))
        await control(engage)  # engaged before the workers start: they read it at start
        a, b = worker("w-a"), worker("w-b")
        tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]

        async def split() -> bool:  # both in the group, each owning a partition, before any record exists
            return bool(a._owned and b._owned)

        await wait_for(split, timeout=60.0)
        await produce(bootstrap, topic, records(0, 40))
        await wait_committed(bootstrap, kafka_group_id, topic)
        held = await outputs(bootstrap, topic)
        assert (len(held["validated"]), len(held["quarantine"])) == (0, 40)
        rules = {dict(r.headers)["qstreams.errors.rules"] for r in held["quarantine"]}
        assert rules == {b"policy:window-failing"}
        assert len(set(a.committed) | set(b.committed)) == 2 and a.committed and b.committed  # two workers
        await control(release)
        await asyncio.sleep(3.0)  # the workers follow the control topic (polled every 0.5 s)
        await produce(bootstrap, topic, records(40, 20))
        await wait_committed(bootstrap, kafka_group_id, topic)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            after = await outputs(bootstrap, topic)
            if len(after["validated"]) >= 20:
                break
            await asyncio.sleep(0.3)
        assert (len(after["validated"]), len(after["quarantine"])) == (20, 40)  # nothing lost, nothing twice
        a.stop()
        b.stop()
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
