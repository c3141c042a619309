"""The broker probe and topic check (every ``topic_check_interval_s``) runs beside the batches, not between them.

Its metadata round trip took 250-400 ms on a loaded broker (``bench_worker.py`` with ``BENCH_WORKER_TRACE=1``: the
slowest batch of a run was acknowledged, then waited that long to be committed, about 5 s into the run) and the
worker awaited it between two cycles: nothing was polled, processed or committed meanwhile. Here a probe does not
answer until the test lets it: the records fed meanwhile must be processed and committed all the same.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.kafka.transport import TopicPartition
from streams.testing.transport import InMemoryTransport

from .test_worker_inmemory import TOPIC, feed, run, running, worker_for

P0 = TopicPartition(TOPIC, 0)


class SlowProbe(InMemoryTransport):
    """A probe answers only once released; the probes started are counted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.probes, self.answer = 0, asyncio.Event()

    async def probe(self, callbacks: Any) -> None:
        self.probes += 1
        await self.answer.wait()
        await super().probe(callbacks)


def test_batches_are_committed_while_a_probe_waits_for_the_broker() -> None:
    async def scenario() -> None:
        transport = SlowProbe(sources=[TOPIC], partitions={TOPIC: 1})
        feed(transport, 20, 0, seed=3)
        worker = worker_for(transport, batch_max_records=10, topic_check_interval_s=0.01)
        async with running(worker):
            await transport.wait_for(lambda: transport.probes == 1, timeout=10)
            feed(transport, 40, 0, seed=4)  # arrives while the probe waits
            try:
                await transport.wait_for(lambda: transport.committed == {P0: 60}, timeout=10)
            finally:
                transport.answer.set()
            await transport.wait_for(lambda: transport.probes >= 2, timeout=10)  # probing goes on after it
        assert worker.committed == {P0: 60}

    run(scenario)


def test_the_stop_does_not_wait_for_a_probe_that_never_answers() -> None:
    async def scenario() -> None:
        transport = SlowProbe(sources=[TOPIC], partitions={TOPIC: 1})
        feed(transport, 20, 0, seed=3)
        worker = worker_for(transport, batch_max_records=10, topic_check_interval_s=0.01)
        async with running(worker):
            await transport.wait_for(lambda: transport.probes == 1 and transport.committed == {P0: 20}, timeout=10)
        assert worker.stopped.is_set() and transport.closed

    run(scenario)


def test_a_probe_that_raises_stops_the_worker_with_its_error() -> None:
    """A probe raises only what is not the broker's (a configuration error): the worker raises it, as before."""

    class Refusing(InMemoryTransport):
        async def probe(self, callbacks: Any) -> None:
            raise ValueError("a configuration error")

    async def scenario() -> None:
        transport = Refusing(sources=[TOPIC], partitions={TOPIC: 1})
        worker = worker_for(transport, topic_check_interval_s=0.01)
        with pytest.raises(ValueError, match="a configuration error"):
            await asyncio.wait_for(worker.run(), 10)
        assert transport.closed

    run(scenario)
