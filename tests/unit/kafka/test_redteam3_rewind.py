"""Red team 3: a batch processed while an earlier batch of its partition fails must not be committed past it.

``docs/delivery.md``: "a later batch never commits past an earlier one that is still in flight or failed". Batch A
(offsets 0-3) is in flight; batch B (4-7) is processed in a thread meanwhile; A's produce fails while B is being
processed: the partition is rewound to A (seek, retried after a backoff). B was then submitted and its offset 8
committed while A's outputs were written nowhere: a rebalance or a crash before A's retry lost A's records. Now B
is dropped (it is read again after A) and no commit passes A before A's outputs are acknowledged."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from streams.kafka.transport import TopicPartition
from streams.pipeline.binding import Binding
from streams.pipeline.records import BatchResult, Message
from streams.testing import generate_feature_records
from streams.testing.transport import InMemoryTransport
from tests.unit.kafka.test_worker_inmemory import TOPIC, TP0, run, running, worker_for

OUTPUTS = (f"{TOPIC}.validated", f"{TOPIC}.quarantine", f"{TOPIC}.dlq")


class BrokenPipeError_(Exception):
    """A produce refused (not retriable)."""

    retriable = False


class HoldSecond:
    """A binding whose call for the batch starting at ``offset`` waits until ``release`` is set."""

    def __init__(self, inner: Binding, offset: int) -> None:
        self.inner, self.offset = inner, offset
        self.started, self.release = threading.Event(), threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def process(self, messages: Sequence[Message], *, worker_id: str) -> BatchResult:
        if messages[0].offset == self.offset and not self.release.is_set():
            self.started.set()
            self.release.wait(timeout=10.0)
        return self.inner.process(messages, worker_id=worker_id)


class Covering(InMemoryTransport):
    """At each commit (when the group takes it), how many source records below the offset have an output."""

    source_of: dict[bytes, int]
    seen: list[tuple[int, int]]

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        written = {self.source_of[m.value or b""] for t in OUTPUTS for m in self.records(t)}
        self.seen += [(o, len({w for w in written if w < o})) for o in offsets.values()]
        await super().commit(offsets)


def test_a_batch_processed_while_the_one_before_fails_is_not_committed_past_it() -> None:
    transport = Covering(sources=[TOPIC], partitions={TOPIC: 1})
    values = [orjson.dumps(r) for r in generate_feature_records(8, seed=5).records]
    transport.source_of, transport.seen = {v: i for i, v in enumerate(values)}, []
    worker = worker_for(transport, batch_max_records=4, batch_retries=3)

    async def scenario() -> None:
        hold = HoldSecond(worker.bindings[TOPIC], 4)
        worker.bindings[TOPIC] = hold  # type: ignore[assignment]
        for v in values:
            transport.produce(TOPIC, v)
        transport.hold_acks()  # batch A's outputs stay in flight
        async with running(worker) as task:
            await transport.wait_for(lambda: transport.held > 0)
            await asyncio.to_thread(hold.started.wait, 10.0)  # batch B is processed (in a thread: A is in flight)
            transport.fail_held(BrokenPipeError_("refused"))  # A fails meanwhile: the partition goes back to 0
            await transport.wait_for(lambda: TP0 in transport.paused or bool(transport.commits), timeout=5)
            hold.release.set()
            await transport.wait_for(lambda: transport.committed.get(TP0) == 8 or task.done(), timeout=15)
            assert not task.done(), task.exception()
        assert transport.seen and all(covered == offset for offset, covered in transport.seen), transport.seen
        assert [c[TP0] for c in transport.commits] == sorted(c[TP0] for c in transport.commits)  # never back
        written = [transport.source_of[m.value or b""] for t in OUTPUTS for m in transport.records(t)]
        assert set(written) == set(range(8))  # nothing lost (B may have been written twice: at-least-once)

    run(scenario)
