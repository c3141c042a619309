"""At-least-once: a batch's offsets are committed in the background; the worker processes the next poll meanwhile,
and still commits every offset, in order, only after its outputs were acknowledged."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from streams.kafka.transport import TopicPartition
from streams.testing.transport import InMemoryTransport

from .test_worker_inmemory import TOPIC, feed, run, running, worker_for

P0 = TopicPartition(TOPIC, 0)


class SlowOffsetCommits(InMemoryTransport):
    """Offset commits take a round trip's time; every step is logged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log = list[str]()

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.log.append("commit-start")
        await asyncio.sleep(0.02)
        await super().commit(offsets)
        self.log.append("commit-end")


def test_the_next_poll_is_processed_while_the_last_offsets_commit() -> None:
    async def scenario() -> None:
        transport = SlowOffsetCommits(sources=[TOPIC], partitions={TOPIC: 1})
        feed(transport, 60, 0)
        worker = worker_for(transport, batch_max_records=10)
        calls = worker.bindings[TOPIC].process

        def process(messages: Any, *, worker_id: str) -> Any:
            transport.log.append("process")
            return calls(messages, worker_id=worker_id)

        worker.bindings[TOPIC].process = process
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {P0: 60}, timeout=10)
        committing, overlapped = False, 0
        for step in transport.log:
            committing = (committing or step == "commit-start") and step != "commit-end"
            overlapped += step == "process" and committing
        assert overlapped > 0, transport.log
        offsets = [c[P0] for c in transport.commits]
        assert offsets == sorted(offsets) and offsets[-1] == 60
        assert worker.committed == {P0: 60}

    run(scenario)


def test_a_commit_of_acknowledged_offsets_ends_while_the_next_poll_is_processed() -> None:
    """Every batch acknowledged at once, nothing awaits acknowledgement when the next poll is processed, but their
    offsets still commit in the background: processing inline held the loop, and the commit ended only after the
    next poll's processing (its batches' latency grew by a poll's processing: issue 13, gate-mode p99)."""
    from .test_loop_free import blocking, ended_during_processing

    async def scenario() -> None:
        transport = SlowOffsetCommits(sources=[TOPIC], partitions={TOPIC: 1})
        feed(transport, 60, 0)
        worker = worker_for(transport, batch_max_records=10)
        blocking(worker, transport.log)  # each poll's processing holds its thread longer than a commit takes
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {P0: 60}, timeout=20)
        assert ended_during_processing(transport.log, "commit-end") > 0, transport.log
        offsets = [c[P0] for c in transport.commits]
        assert offsets == sorted(offsets) and offsets[-1] == 60

    run(scenario)
