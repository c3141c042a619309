"""Faults end in a bounded state, without a broker (issue 8 §3–§5): the in-memory transport drives the worker."""

from __future__ import annotations

from streams.observability import Health
from streams.testing.transport import InMemoryTransport
from tests.test_worker_inmemory import TOPIC, feed, run, running, worker_for


class UnsupportedCodecError(Exception):
    """Stands for aiokafka's error on a batch compressed with a codec whose library is missing."""


def test_a_partition_whose_fetch_keeps_failing_fails_health_with_its_cause() -> None:
    transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 1})
    worker = worker_for(transport)
    health: Health = worker.health
    transport.poll_failures.extend(UnsupportedCodecError("lz4 is not available") for _ in range(3))

    async def scenario() -> None:
        feed(transport, 10, 0)
        async with running(worker):
            await transport.wait_for(lambda: not transport.poll_failures and bool(health.down), timeout=10)
            status, body = health.report()
            assert status == 503
            assert (
                "fetch failed 3 times in a row: UnsupportedCodecError: lz4 is not available" in body["problems"][TOPIC]
            )
            await worker.transport.probe(worker)  # a probe of the cluster is no poll: still failing
            assert health.report()[0] == 503
            await transport.wait_for(lambda: sum(transport.committed.values()) == 10)
            assert health.report()[0] == 200  # a poll that works clears it

    run(scenario)
