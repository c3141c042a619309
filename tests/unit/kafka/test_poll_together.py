"""A poll of several partitions is decoded and validated in one call; outputs and commits stay per partition.

The same records run through two workers on the in-memory transport: one routing each poll of the topic in one
call (``Binding.process_poll``, the default), one forced to process partition by partition (as before). Their
outputs per output partition, their commits and their per-partition batch counts must be identical.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from streams.kafka.batches import BatchWorker
from streams.kafka.observers import WorkerObserver
from streams.kafka.transport import TopicPartition
from streams.pipeline.binding import Binding
from streams.pipeline.records import BatchResult, OutRecord
from streams.testing import generate_feature_records
from streams.testing.transport import InMemoryTransport
from tests.unit.kafka.test_worker_inmemory import EVENTS, TOPIC, run, running, worker_for

VALIDATED, QUARANTINE, DLQ = f"{TOPIC}.validated", f"{TOPIC}.quarantine", f"{TOPIC}.dlq"
PARTS, PER = 3, 40


class Counts(WorkerObserver):
    def __init__(self) -> None:
        self.batches: list[tuple[TopicPartition, int, dict[str, int], dict[int, int]]] = []

    def on_batch_end(self, tp: TopicPartition, binding: Binding, messages: int, result: BatchResult,
                     lag: int | None) -> None:  # fmt: skip
        self.batches.append((tp, messages, dict(result.counts), dict(result.last_offsets)))


def cluster() -> InMemoryTransport:
    """Three source partitions of faulty records (distinct event ids), each with an undecodable message."""
    transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: PARTS, VALIDATED: PARTS, QUARANTINE: PARTS,
                                                               DLQ: PARTS})  # fmt: skip
    for p in range(PARTS):
        batch = generate_feature_records(PER, seed=100 + p, faults={"wrong_type": 0.1, "invalid_enum": 0.1})
        for i, r in enumerate(batch.records):
            value = b"{broken" if i == 7 else orjson.dumps(r)
            transport.produce(TOPIC, value, key=b"k%d" % i, partition=p, timestamp_ms=1_740_787_200_000 + i)
    return transport


def start(transport: InMemoryTransport, *, together: bool, **settings: Any) -> tuple[BatchWorker, list[int], Counts]:
    counts = Counts()
    worker = worker_for(transport, observers=(counts,), **settings)
    binding = worker.bindings[TOPIC]
    decoded: list[int] = []
    decode = binding.decoder.decode
    binding.decoder.decode = lambda ms: decoded.append(len(ms)) or decode(ms)  # type: ignore[method-assign]
    if not together:
        worker._together = lambda group: None  # type: ignore[method-assign]
    return worker, decoded, counts


def outputs(transport: InMemoryTransport) -> dict[tuple[str, int], list[tuple[Any, ...]]]:
    return {(t, p): [(m.value, m.key, m.headers, m.timestamp_ms) for m in transport.records(t, p)]
            for t in (VALIDATED, QUARANTINE, DLQ) for p in range(PARTS)}  # fmt: skip


def drive(together: bool, *, fail: bool = False, **settings: Any) -> tuple[InMemoryTransport, list[int], Counts]:
    transport = cluster()
    worker, decoded, counts = start(transport, together=together, **settings)
    if fail:  # the first output batch of the first partition (its validated records) is refused once
        transport.produce_failures.append(TimeoutError("the leader moved"))

    async def scenario() -> None:
        async with running(worker):
            await transport.wait_for(lambda: sum(transport.committed.values()) == PARTS * PER)

    run(scenario)
    return transport, decoded, counts


@pytest.mark.parametrize("exactly_once", [False, True])
def test_one_decode_per_poll_and_the_same_outputs_and_commits_as_per_partition(exactly_once: bool) -> None:
    poll, decoded, counts = drive(True, exactly_once=exactly_once)
    alone, decoded_alone, counts_alone = drive(False, exactly_once=exactly_once)

    assert decoded == [PARTS * PER]  # the whole poll (3 partitions) in one decode call
    assert decoded_alone == [PER] * PARTS
    assert outputs(poll) == outputs(alone)
    assert all(outputs(poll)[(t, p)] for t in (VALIDATED, QUARANTINE, DLQ) for p in range(PARTS))
    assert poll.committed == alone.committed == {TopicPartition(TOPIC, p): PER for p in range(PARTS)}
    assert sorted(counts.batches) == sorted(counts_alone.batches)
    assert len(counts.batches) == PARTS
    # the poll's quality events are sent once, describing every partition
    summaries = [orjson.loads(m.value or b"") for m in poll.records(EVENTS)
                 if ("ce_type", b"io.qualitystreams.batch.summary.v1") in m.headers]  # fmt: skip
    assert [[o["partition"] for o in s["offsets"]] for s in summaries] == [[0, 1, 2]]


def test_a_failed_produce_reads_only_that_partition_again_and_it_is_retried_alone() -> None:
    poll, decoded, counts = drive(True, fail=True)
    alone, decoded_alone, _ = drive(False, fail=True)
    assert decoded == [PARTS * PER, PER]  # the poll, then partition 0 read again and processed alone
    assert decoded_alone == [PER] * PARTS + [PER]
    assert poll.seeks == alone.seeks == [(TopicPartition(TOPIC, 0), 0)]
    # at least once, as per partition: the re-read batch's quarantined and dead-lettered records were sent twice
    assert outputs(poll) == outputs(alone)
    assert len(poll.records(QUARANTINE, 0)) > len(drive(True)[0].records(QUARANTINE, 0))
    assert poll.committed == alone.committed == {TopicPartition(TOPIC, p): PER for p in range(PARTS)}
    assert [c[0].partition for c in counts.batches] == [0, 1, 2, 0]


class RefusingEvents(InMemoryTransport):
    """Refuses the events topic while ``refusing``."""

    refusing = True

    def _submit(self, topic: str, partition: int, records: list[OutRecord]) -> asyncio.Future[Any]:
        if topic == EVENTS and self.refusing:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            future.set_exception(PermissionError(f"{topic} refuses writes"))
            return future
        return super()._submit(topic, partition, records)


def test_the_events_of_a_poll_hold_the_commit_of_every_partition_until_they_land() -> None:
    source = cluster()
    transport = RefusingEvents(sources=[TOPIC], partitions={TOPIC: PARTS})
    transport.logs[TOPIC] = source.logs[TOPIC]
    worker, decoded, _ = start(transport, together=True)

    async def scenario() -> None:
        async with running(worker):
            await transport.wait_for(lambda: len(worker._pending) == PARTS and worker.event_delivery.failures > 1)
            pending = [q[0] for q in worker._pending.values()]
            assert all(b.event_futures is pending[0].event_futures for b in pending)  # sent once, shared
            await asyncio.sleep(0.1)
            assert transport.committed == {}  # no partition commits before the poll's events landed
            transport.refusing = False
            await transport.wait_for(lambda: sum(transport.committed.values()) == PARTS * PER)

    run(scenario)
    assert decoded == [PARTS * PER]  # the records were not processed (nor sent) again
    once = outputs(drive(True)[0])
    assert len(transport.records(VALIDATED)) == sum(len(once[(VALIDATED, p)]) for p in range(PARTS))
