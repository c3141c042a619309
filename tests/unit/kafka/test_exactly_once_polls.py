"""Exactly-once under a backlog: one transaction holds several polls, and is still read again whole when it fails."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from streams.kafka.observers import WorkerObserver
from streams.kafka.transport import TopicPartition
from streams.settings import Settings
from streams.testing.transport import InMemoryTransport

from .test_exactly_once_overlap import SlowCommits, routed
from .test_worker_inmemory import TOPIC, feed, run, running, worker_for

P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


def worker_with(transport: InMemoryTransport, **settings: Any) -> Any:
    """A gate-mode exactly-once worker with batches of 10 whose transactions stay open for a minute at most."""
    config = {"exactly_once": True, "batch_max_records": 10, "transaction_interval_ms": 60_000} | settings
    return worker_for(transport, **config)


def test_full_polls_share_a_transaction_up_to_its_record_bound() -> None:
    async def scenario() -> None:
        transport = SlowCommits(sources=[TOPIC], partitions={TOPIC: 1})
        feed(transport, 60, 0)
        worker = worker_with(transport, transaction_max_records=30)
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {P0: 60}, timeout=20)
        assert transport.commits == [{P0: 30}, {P0: 60}]  # six full polls, two transactions
        assert sorted(routed(transport).items()) == [(o, 1) for o in range(60)]
        assert worker.committed == {P0: 60}

    run(scenario)


def test_a_poll_that_is_not_full_or_an_idle_poll_commits_the_open_transaction_at_once() -> None:
    async def scenario() -> None:
        transport = SlowCommits(sources=[TOPIC], partitions={TOPIC: 1})
        feed(transport, 25, 0)  # polls of 10, 10 and 5: the worker caught up at the third
        worker = worker_with(transport, transaction_max_records=1000)
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {P0: 25}, timeout=5)
            for m in feed(InMemoryTransport(sources=[TOPIC]), 35, 0)[0][25:]:  # one full poll, then nothing:
                transport.produce(TOPIC, m.value, timestamp_ms=m.timestamp_ms)  # the next (idle) poll commits it
            await transport.wait_for(lambda: transport.committed == {P0: 35}, timeout=5)
        assert transport.commits == [{P0: 25}, {P0: 35}]
        assert sorted(routed(transport).items()) == [(o, 1) for o in range(35)]

    run(scenario)


def test_a_failed_transaction_of_several_polls_is_read_again_whole() -> None:
    async def scenario() -> None:
        transport = SlowCommits(sources=[TOPIC], partitions={TOPIC: 1}, fail=1)
        _, bad = feed(transport, 45, 0, seed=4)
        worker = worker_with(transport, transaction_max_records=30)
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {P0: 45}, timeout=25)
        assert transport.log.index("commit-failed") > transport.log.index("begin")
        assert transport.commits == [{P0: 30}, {P0: 45}]  # the three polls of the failed one, then the rest
        assert sorted(routed(transport).items()) == [(o, 1) for o in range(45)]
        quarantined = {int(dict(m.headers)["qstreams.errors.offset"]) for m in transport.records(f"{TOPIC}.quarantine")}
        assert quarantined == bad
        assert worker.committed == {P0: 45}

    run(scenario)


class Revokes(WorkerObserver):
    """Notes the group's committed offsets when partitions are released (after the worker drained them)."""

    def __init__(self, transport: InMemoryTransport) -> None:
        self.transport, self.at_revoke = transport, list[dict[TopicPartition, int]]()

    async def on_revoke(self, revoked: set[TopicPartition]) -> None:
        self.at_revoke.append(dict(self.transport.committed))


def test_a_revoke_commits_the_transaction_kept_open_before_the_partitions_are_released() -> None:
    async def scenario() -> None:
        transport = SlowCommits(sources=[TOPIC], partitions={TOPIC: 2})
        feed(transport, 10, 0)  # one full poll: its transaction stays open for the next
        revokes = Revokes(transport)
        worker = worker_for(transport, exactly_once=True, batch_max_records=10, transaction_interval_ms=60_000,
                            observers=(revokes,))  # fmt: skip
        calls = worker.bindings[TOPIC].process

        def process(messages: Any, *, worker_id: str) -> Any:
            transport.rebalance({P1})  # applied at the next poll, while the transaction is open
            return calls(messages, worker_id=worker_id)

        worker.bindings[TOPIC].process = process
        async with running(worker):
            await transport.wait_for(lambda: bool(revokes.at_revoke), timeout=5)
        assert revokes.at_revoke[0] == {P0: 10}
        assert sorted(routed(transport).items()) == [(o, 1) for o in range(10)]

    run(scenario)


class SlowerCommits(SlowCommits):
    async def commit_transaction(self) -> None:
        await asyncio.sleep(0.3)
        await super().commit_transaction()


def test_polls_processed_while_a_transaction_commits_are_read_again_after_a_rebalance_not_sent_twice() -> None:
    async def scenario() -> None:
        transport = SlowerCommits(sources=[TOPIC], partitions={TOPIC: 1})
        feed(transport, 80, 0)
        # transactions of 30 records (kept open across polls); a budget letting a transaction grow by polls processed
        # while the last one commits once a commit was measured: the third one's first poll, [60, 70), is followed
        # by another read, at which the rebalance applies
        worker = worker_with(transport, transaction_max_records=30, transaction_max_latency_ms=5000)
        calls = worker.bindings[TOPIC].process

        def process(messages: Any, *, worker_id: str) -> Any:
            if messages[0].offset == 60 and not transport.seeks:  # processed while the second transaction commits
                transport.rebalance({P0})  # revoked and assigned again, from the committed offset
            return calls(messages, worker_id=worker_id)

        worker.bindings[TOPIC].process = process
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {P0: 80}, timeout=20)
        assert sorted(routed(transport).items()) == [(o, 1) for o in range(80)]
        assert (P0, 60) in transport.seeks, transport.commits  # the poll processed ahead was dropped, read again

    run(scenario)


class HalfSecondCommits(SlowCommits):
    extra = 0.5  # seconds a commit takes on top of SlowCommits' delay

    async def commit_transaction(self) -> None:
        await asyncio.sleep(self.extra)
        await super().commit_transaction()


def commit_ends(commit_s: float = 0.5, poll_s: float = 0.1, **settings: Any) -> list[int]:
    """The committed offsets, transaction by transaction, of 80 records in polls of 10 processed in ``poll_s`` each
    while commits take ``commit_s`` (a record bound of 1,000); every record routed once."""
    ends: list[int] = []

    async def scenario() -> None:
        transport = HalfSecondCommits(sources=[TOPIC], partitions={TOPIC: 1})
        transport.extra = commit_s
        feed(transport, 80, 0)
        worker = worker_with(transport, transaction_max_records=1000, transaction_interval_ms=0, **settings)
        calls = worker.bindings[TOPIC].process

        def process(messages: Any, *, worker_id: str) -> Any:
            time.sleep(poll_s)  # in a thread: a transaction is committing
            return calls(messages, worker_id=worker_id)

        worker.bindings[TOPIC].process = process  # type: ignore[method-assign]
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {P0: 80}, timeout=25)
        ends.extend(c[P0] for c in transport.commits)
        assert sorted(routed(transport).items()) == [(o, 1) for o in range(80)]

    run(scenario)
    return ends


def test_a_transaction_grows_only_while_its_first_poll_stays_within_the_latency_budget() -> None:
    """Without a latency bound, the five polls processed while a commit runs would all go into the next transaction,
    their first one committed ~0.5 s after the commit started. Once a commit was measured, a poll processed ahead is
    followed by another only if the first one's age, a poll's processing and a commit stay within
    ``transaction_max_latency_ms`` (0.15 s by default): never here, so every transaction holds one poll; the second
    too, although no commit was measured while its polls were processed (an unmeasured commit is not free)."""
    assert Settings().transaction_max_latency_ms < 500 + 100
    ends = commit_ends()
    assert ends == list(range(10, 90, 10)), ends


def test_a_larger_latency_budget_lets_transactions_grow() -> None:
    """The same commits and polls with ``transaction_max_latency_ms`` of 5 s: the polls processed while a commit runs
    share the next transaction (up to the record bound), instead of one poll each, once a commit was measured."""
    ends = commit_ends(transaction_max_latency_ms=5000)
    assert ends[:2] == [10, 20], ends
    assert max(b - a for a, b in itertools.pairwise([0, *ends])) >= 20, ends


def test_the_default_latency_budget_keeps_card_like_transactions_to_one_poll() -> None:
    """Polls processed in 35 ms (~50 ms with their read) while commits take ~70 ms, the next poll read while the last
    transaction commits: one processed ahead and a second would commit ~190 ms after the first was read. Within the
    former default budget (250 ms) transactions held two polls, the first waiting for the second's processing and a
    larger commit (on card records, ~100 ms polls and ~90 ms commits, those made a run's slowest batches); not within
    the default (150 ms): every transaction holds one poll."""
    ends = commit_ends(commit_s=0.05, poll_s=0.035)
    assert ends == list(range(10, 90, 10)), ends
