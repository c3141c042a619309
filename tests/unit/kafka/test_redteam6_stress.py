"""At-least-once under random acknowledgement delays, slow and failing offset commits, slow processing (a thread)
and rebalances: no record is lost, and no commit passes a source record whose outputs were not acknowledged."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from typing import Any

import pytest

from streams.errors import CommitRefusedError, TransportError
from streams.kafka.transport import TopicPartition
from streams.pipeline.records import OutRecord
from streams.testing.transport import InMemoryTransport

from .test_worker_inmemory import TOPIC, feed, run, running, worker_for

TPS = [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)]
OUTS = (f"{TOPIC}.validated", f"{TOPIC}.quarantine", f"{TOPIC}.dlq")


class Chaos(InMemoryTransport):
    def __init__(self, rnd: random.Random, **kw: Any) -> None:
        super().__init__(**kw)
        self.rnd, self.violations = rnd, list[str]()

    def _submit(self, topic: str, partition: int, records: list[OutRecord], *, outside: bool = False) -> Any:
        if topic not in OUTS or self.rnd.random() < 0.3:
            return super()._submit(topic, partition, records, outside=outside)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def land() -> None:
            if not future.done():
                future.set_result(self._append(topic, partition, records))

        asyncio.get_running_loop().call_later(self.rnd.random() * 0.03, land)
        return future

    def acknowledged(self) -> set[bytes]:
        return {m.value or b"" for t in OUTS for m in self.records(t)}

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        await asyncio.sleep(self.rnd.random() * 0.02)
        r = self.rnd.random()
        if r < 0.1:
            raise CommitRefusedError("rebalance in progress")
        if r < 0.2:
            raise TransportError("commit failed: the broker went away")
        seen = self.acknowledged()
        for tp, o in offsets.items():
            missing = [m.offset for m in self.records(tp.topic, tp.partition)[:o] if (m.value or b"") not in seen]
            if missing:
                self.violations.append(f"commit {tp.partition}:{o} before offsets {missing[:5]} were acknowledged")
        await super().commit(offsets)


@pytest.mark.parametrize("seed", range(6))
def test_random_delays_failures_and_rebalances_lose_nothing(seed: int) -> None:
    async def scenario() -> None:
        rnd = random.Random(seed)
        transport = Chaos(rnd, sources=[TOPIC], partitions={TOPIC: 2})
        worker = worker_for(transport, batch_max_records=rnd.choice([3, 7, 20]), retry_backoff_ms=5)
        binding = worker.bindings[TOPIC]
        one, poll = binding.process, binding.process_poll

        def slow(call: Any) -> Any:
            def wrapped(arg: Any, *, worker_id: str) -> Any:
                time.sleep(rnd.random() * 0.01)
                return call(arg, worker_id=worker_id)

            return wrapped

        binding.process, binding.process_poll = slow(one), slow(poll)  # type: ignore[method-assign]
        fed = dict.fromkeys(TPS, 0)
        async with running(worker):
            for step in range(25):
                tp = rnd.choice(TPS)
                n = rnd.randint(1, 15)
                feed(transport, n, tp.partition, seed=seed * 1000 + step)
                fed[tp] += n
                if rnd.random() < 0.2:
                    transport.rebalance(rnd.choice([{TPS[0]}, {TPS[1]}, set(TPS)]))
                await asyncio.sleep(rnd.random() * 0.03)
            transport.rebalance(set(TPS))
            await transport.wait_for(lambda: transport.committed == fed, timeout=20)
        assert transport.violations == []
        values = {m.value or b"" for tp in TPS for m in transport.records(TOPIC, tp.partition)}
        assert values <= transport.acknowledged()  # every source record has its output

    run(scenario)
