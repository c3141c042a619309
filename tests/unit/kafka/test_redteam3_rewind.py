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


class HoldPoll(HoldSecond):
    """``HoldSecond`` for the poll routed together (``process_poll``)."""

    def process_poll(self, batches: Sequence[Sequence[Message]], *, worker_id: str) -> list[BatchResult]:
        if not self.release.is_set():
            self.started.set()
            self.release.wait(timeout=10.0)
        return self.inner.process_poll(batches, worker_id=worker_id)


def test_when_the_batch_carrying_a_polls_events_is_dropped_the_next_one_carries_them() -> None:
    """Poll 2 holds P0 (offsets 4-5, carrying the poll's summary) and P1 (0-1); P0 is rewound meanwhile: P1's batch
    is submitted with the poll's summary (it describes P1's records too), instead of none."""
    transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 2})
    values = [orjson.dumps(r) for r in generate_feature_records(8, seed=6).records]
    worker = worker_for(transport, batch_max_records=4, batch_retries=3)

    async def scenario() -> None:
        hold = HoldPoll(worker.bindings[TOPIC], -1)
        worker.bindings[TOPIC] = hold  # type: ignore[assignment]
        for v in values[:6]:
            transport.produce(TOPIC, v, partition=0)
        for v in values[6:]:
            transport.produce(TOPIC, v, partition=1)
        transport.hold_acks()
        async with running(worker) as task:
            await transport.wait_for(lambda: transport.held > 0)
            await asyncio.to_thread(hold.started.wait, 10.0)
            transport.fail_held(BrokenPipeError_("refused"))
            await transport.wait_for(lambda: TP0 in transport.paused, timeout=5)
            hold.release.set()
            want = {TP0: 6, TopicPartition(TOPIC, 1): 2}
            await transport.wait_for(lambda: transport.committed == want or task.done(), timeout=15)
            assert not task.done(), task.exception()
        summaries = [orjson.loads(e.value or b"") for e in transport.records("events")
                     if dict(e.headers).get("ce_type") == b"io.qualitystreams.batch.summary.v1"]  # fmt: skip
        described = {(o["partition"], o["first"]) for s in summaries for o in s["offsets"]}
        assert (1, 0) in described  # P1's records are described by some summary

    run(scenario)
