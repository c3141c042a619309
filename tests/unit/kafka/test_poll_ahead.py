"""Poll ahead (``streams.kafka.ahead``): the next poll is read while the current one is processed; a revoke, a
rewind, the stop and an aborted transaction meanwhile never let the poll read ahead lose, double or reorder records.

Every scenario: one partition, ``batch_max_records`` 4, so each poll is full and the next one is read ahead; the
first poll's processing is held (in a thread: a poll is being read) until the poll read ahead has returned."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import orjson
import pytest

from streams.pipeline.records import Message
from streams.testing import generate_feature_records
from streams.testing.transport import InMemoryTransport
from tests.unit.kafka.test_redteam3_rewind import HoldSecond
from tests.unit.kafka.test_worker_inmemory import TOPIC, TP0, run, running, worker_for

OUTPUTS = (f"{TOPIC}.validated", f"{TOPIC}.quarantine", f"{TOPIC}.dlq")


class Refused(Exception):
    """A produce refused (not retriable)."""

    retriable = False


class Counting(InMemoryTransport):
    """Counts the polls that returned records; ``rebalance_now`` runs the callbacks from another task, as aiokafka's
    coordinator does (the in-memory transport otherwise rebalances inside its next poll)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.returned, self.cancelled, self.block = 0, 0, asyncio.Event()
        self.block.set()
        self.stall_after: int | None = None  # the polls after this many wait for ``block``
        self.fill_holds = False
        self.commit_gate: asyncio.Event | None = None  # exactly-once: the first commit waits for it, then fails
        self.fail_more = 0  # exactly-once: commits failing at once after that one

    async def poll(self, max_records: int, timeout_ms: int) -> dict[Any, list[Message]]:
        try:
            if self.fill_holds:  # records fetched, then held while the fill waits for more (aiokafka's ``fill``)
                out = await super().poll(max_records, timeout_ms)
                await self.block.wait()
            else:
                await self.block.wait()
                out = await super().poll(max_records, timeout_ms)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.returned += bool(out)
        if self.returned == self.stall_after:
            self.block.clear()
        return out

    async def rebalance_now(self, assignment: set[Any]) -> None:
        self._next_assignment = set(assignment)
        await self._apply_rebalance()

    async def commit_transaction(self) -> None:
        gate, self.commit_gate = self.commit_gate, None
        if gate is not None:
            await gate.wait()
            raise RuntimeError("the transaction coordinator fenced this producer")
        if self.fail_more:
            self.fail_more -= 1
            raise RuntimeError("the transaction timed out")
        await super().commit_transaction()


def source_offsets(transport: InMemoryTransport) -> Counter[int]:
    """The source offset of every output record (one partition; ``feed`` order: value -> offset)."""
    offsets = {m.value: m.offset for m in transport.records(TOPIC, 0)}
    return Counter(offsets[m.value] for t in OUTPUTS for m in transport.records(t) if m.value in offsets)


def setup(n: int, **settings: Any) -> tuple[Counting, Any, HoldSecond]:
    transport = Counting(sources=[TOPIC], partitions={TOPIC: 1})
    for r in generate_feature_records(n, seed=11).records:
        transport.produce(TOPIC, orjson.dumps(r))
    worker = worker_for(transport, batch_max_records=4, batch_retries=3, **({"poll_ahead": True} | settings))
    hold = HoldSecond(worker.bindings[TOPIC], 0)
    worker.bindings[TOPIC] = hold  # type: ignore[assignment]
    return transport, worker, hold


def test_a_partition_revoked_and_given_back_while_a_poll_is_read_ahead_is_not_read_twice() -> None:
    """Poll 1 (0-3) is processed, poll 2 (4-7) read ahead; the partition is revoked and given back meanwhile: it
    resumes from the committed offset 4, so poll 2 (read under the old assignment) must be dropped, else 4-7 are
    processed twice (and the committed offset goes 8, then back to 4's re-read)."""
    transport, worker, hold = setup(12)

    async def scenario() -> None:
        async with running(worker) as task:
            await asyncio.to_thread(hold.started.wait, 10.0)
            await transport.wait_for(lambda: transport.returned >= 2)  # poll 2 is read ahead
            rebalance = asyncio.create_task(transport.rebalance_now({TP0}))
            await asyncio.sleep(0.05)  # the revoke waits for poll 1's processing
            hold.release.set()
            await rebalance
            await transport.wait_for(lambda: transport.committed.get(TP0) == 12 or task.done(), timeout=15)
            assert not task.done(), task.exception()
        assert sorted(source_offsets(transport).items()) == [(o, 1) for o in range(12)]
        assert [c[TP0] for c in transport.commits] == sorted(c[TP0] for c in transport.commits)

    run(scenario)


def test_a_revoke_cancels_a_poll_still_reading_ahead() -> None:
    """As above, but the poll read ahead holds 4-7 while it waits for more (a fill) when the partition is revoked
    and given back: it is cancelled, else it returns 4-7 of the old assignment after the new one starts at 4."""
    transport, worker, hold = setup(12)
    transport.stall_after, transport.fill_holds = 1, True

    async def scenario() -> None:
        async with running(worker) as task:
            await asyncio.to_thread(hold.started.wait, 10.0)
            await asyncio.sleep(0.05)  # poll 2 (4-7) is read ahead and held
            rebalance = asyncio.create_task(transport.rebalance_now({TP0}))
            await asyncio.sleep(0.05)
            hold.release.set()
            await rebalance
            transport.block.set()
            await transport.wait_for(lambda: transport.committed.get(TP0) == 12 or task.done(), timeout=15)
            assert not task.done(), task.exception()
        assert transport.cancelled >= 1
        assert sorted(source_offsets(transport).items()) == [(o, 1) for o in range(12)]

    run(scenario)


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
def test_a_revoke_cancels_a_poll_being_read_without_poll_ahead(exactly_once: bool) -> None:
    """The same race without poll ahead (the default): the poll holds 0-3 while its fill waits for more when the
    partition is revoked and given back from its committed offset 0. Before, 0-3 were written twice (in committed
    transactions too)."""
    transport, worker, hold = setup(8, poll_ahead=False, exactly_once=exactly_once)
    transport.fill_holds = True
    transport.block.clear()
    hold.release.set()

    async def scenario() -> None:
        async with running(worker) as task:
            await transport.wait_for(lambda: transport.highwater(TP0) == 8 and bool(transport._positions.get(TP0)))
            await transport.rebalance_now({TP0})
            transport.block.set()
            await transport.wait_for(lambda: transport.committed.get(TP0) == 8 or task.done(), timeout=15)
            assert not task.done(), task.exception()
        assert transport.cancelled >= 1
        assert sorted(source_offsets(transport).items()) == [(o, 1) for o in range(8)]

    run(scenario)


def test_a_rewind_while_a_poll_is_read_ahead_drops_it_until_the_re_read() -> None:
    """Poll 1 (0-3) awaits acknowledgement, poll 2 (4-7) is processed, poll 3 (8-11) read ahead; poll 1's produce
    fails: the partition goes back to 0. Polls 2 and 3 were read before: neither may be committed before 0-3's
    outputs are acknowledged."""
    transport, worker, hold = setup(12)
    hold.offset = 4

    async def scenario() -> None:
        transport.hold_acks()
        async with running(worker) as task:
            await asyncio.to_thread(hold.started.wait, 10.0)
            await transport.wait_for(lambda: transport.returned >= 3)  # poll 3 is read ahead
            transport.fail_held(Refused("refused"))
            await transport.wait_for(lambda: TP0 in transport.paused, timeout=5)
            hold.release.set()
            await transport.wait_for(lambda: transport.committed.get(TP0) == 12 or task.done(), timeout=15)
            assert not task.done(), task.exception()
        first = transport.commits[0][TP0]
        assert first <= 4, transport.commits  # nothing past poll 1 before poll 1's retry was acknowledged
        written = source_offsets(transport)
        assert set(written) == set(range(12))
        assert [c[TP0] for c in transport.commits] == sorted(c[TP0] for c in transport.commits)

    run(scenario)


def test_the_stop_discards_a_poll_being_read_ahead_and_the_next_owner_reads_it() -> None:
    """The stop comes while the poll read ahead waits in the client: it is cancelled (not left pending past the
    close), nothing of it is committed, and the next worker reads it from the committed offset."""
    transport, worker, hold = setup(8)
    transport.stall_after = 1  # the poll read ahead waits in the client

    async def scenario() -> None:
        async with running(worker):
            await asyncio.to_thread(hold.started.wait, 10.0)
            await asyncio.sleep(0.05)
            worker.stop()
            hold.release.set()
        assert transport.cancelled >= 1  # the poll read ahead did not outlive the worker
        assert transport.committed == {TP0: 4}
        assert sorted(source_offsets(transport)) == [0, 1, 2, 3]
        transport.block.set()
        again = worker_for(transport, batch_max_records=4)
        async with running(again):
            await transport.wait_for(lambda: transport.committed.get(TP0) == 8)
        assert sorted(source_offsets(transport).items()) == [(o, 1) for o in range(8)]

    run(scenario)


def test_an_aborted_transaction_drops_the_poll_read_ahead() -> None:
    """Exactly-once: transaction 1 (0-3) commits in the background while polls 2 and 3 are processed ahead and poll
    4 (12-15) is read ahead; the commit fails: everything is read again from 0. Poll 4, read before that rewind,
    must be dropped: sent in the next transaction it would commit offset 16 before 0-11, and be written twice."""
    transport, worker, hold = setup(24, exactly_once=True, transaction_max_records=8, transaction_max_latency_ms=5000)
    worker._commit_s = 0.001  # as after a measured commit: polls processed while this one commits join the next
    gate = transport.commit_gate = asyncio.Event()
    hold.release.set()

    async def scenario() -> None:
        async with running(worker) as task:
            await transport.wait_for(lambda: transport.returned >= 4)  # poll 4 is read ahead
            await asyncio.sleep(0.05)
            gate.set()  # transaction 1 fails: aborted, read again from 0
            await transport.wait_for(lambda: transport.committed.get(TP0) == 24 or task.done(), timeout=20)
            assert not task.done(), task.exception()
        assert sorted(source_offsets(transport).items()) == [(o, 1) for o in range(24)]
        assert [c[TP0] for c in transport.commits] == sorted(c[TP0] for c in transport.commits)

    run(scenario)


def test_a_transaction_of_dropped_batches_aborted_before_the_re_read_reads_again_from_the_rewind() -> None:
    """As above, and the next transaction, holding only poll 4 (dropped: read before the rewind), fails too. Its
    partition must still be read again from 0: from 12 (poll 4's first offset), 0-11 were never written and every
    later batch is dropped as read before the rewind to 0 (the partition stalls). Two guards: a transaction's first
    offsets are those of the batches it sent, and a rewind never goes past an earlier one not read again."""
    transport, worker, hold = setup(24, exactly_once=True, transaction_max_records=8, transaction_max_latency_ms=5000)
    worker._commit_s = 0.001  # as after a measured commit: polls processed while this one commits join the next
    gate = transport.commit_gate = asyncio.Event()
    transport.fail_more = 1
    hold.release.set()

    async def scenario() -> None:
        async with running(worker) as task:
            await transport.wait_for(lambda: transport.returned >= 4)
            await asyncio.sleep(0.05)
            gate.set()
            await transport.wait_for(lambda: transport.committed.get(TP0) == 24 or task.done(), timeout=20)
            assert not task.done(), task.exception()
        assert transport.fail_more == 0
        assert sorted(source_offsets(transport).items()) == [(o, 1) for o in range(24)]

    run(scenario)


def test_a_rewind_before_the_re_read_of_an_earlier_one_goes_back_to_the_earlier() -> None:
    transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 1})
    worker = worker_for(transport)
    worker._rewind(TP0, 4)
    worker._rewind(TP0, 12)  # nothing from 4 was submitted since: 4-11 must be read again too
    assert transport.seeks == [(TP0, 4), (TP0, 4)]
    assert worker._behind(TP0, 12) and not worker._behind(TP0, 4)
