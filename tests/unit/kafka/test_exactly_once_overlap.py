"""Exactly-once: the next poll is processed while the last transaction commits, and nothing is lost or doubled."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from streams.kafka.transport import TopicPartition
from streams.testing.transport import InMemoryTransport

from .test_worker_inmemory import TOPIC, feed, run, running, worker_for

OUTPUTS = (f"{TOPIC}.validated", f"{TOPIC}.quarantine", f"{TOPIC}.dlq")


class SlowCommits(InMemoryTransport):
    """Commits take a while (as a broker round trip does); the ``fail``-th commit fails; every step is logged."""

    def __init__(self, *args: Any, fail: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fail, self.commits_tried, self.log = fail, 0, list[str]()
        self.delay = 0.02

    async def send_batch(self, topic: str, partition: int, records: Any) -> list[asyncio.Future[Any]]:
        if topic in OUTPUTS:
            assert self._transaction is not None, "outputs sent outside a transaction"
        return await super().send_batch(topic, partition, records)

    async def begin_transaction(self) -> None:
        self.log.append("begin")
        await super().begin_transaction()

    async def commit_transaction(self) -> None:
        self.commits_tried += 1
        self.log.append("commit-start")
        await asyncio.sleep(self.delay)
        if self.commits_tried == self.fail:
            self.log.append("commit-failed")
            raise RuntimeError("the transaction coordinator fenced this producer")
        await super().commit_transaction()
        self.log.append("commit-end")


def scenario_for(transport: SlowCommits, sizes: dict[int, int], **settings: Any) -> tuple[Any, dict[int, set[int]]]:
    bad: dict[int, set[int]] = {}
    for partition, n in sizes.items():
        bad[partition] = feed(transport, n, partition, seed=partition + 3)[1]
    worker = worker_for(transport, exactly_once=True, batch_max_records=10, **settings)
    calls = worker.bindings[TOPIC].process

    def process(messages: Any, *, worker_id: str) -> Any:
        transport.log.append("process")
        return calls(messages, worker_id=worker_id)

    worker.bindings[TOPIC].process = process  # type: ignore[method-assign]
    return worker, bad


def routed(transport: InMemoryTransport) -> Counter[int]:
    """The source offset of every output record (one source partition): its error header, else its timestamp."""
    seen: Counter[int] = Counter()
    for topic in OUTPUTS:
        for m in (m for log in transport.logs.get(topic, []) for m in log):
            offset = dict(m.headers).get("qstreams.errors.offset")
            assert m.timestamp_ms is not None
            seen[int(offset) if offset is not None else m.timestamp_ms - 1_740_787_200_000] += 1  # ``feed``'s stamps
    return seen


def processed_while_committing(log: list[str]) -> int:
    committing, count = False, 0
    for step in log:
        committing = (committing or step == "commit-start") and step not in ("commit-end", "commit-failed")
        count += step == "process" and committing
    return count


def test_the_next_poll_is_processed_while_the_last_transaction_commits() -> None:
    async def scenario() -> None:
        transport = SlowCommits(sources=[TOPIC], partitions={TOPIC: 1})
        worker, _ = scenario_for(transport, {0: 60})
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {TopicPartition(TOPIC, 0): 60}, timeout=20)
        assert processed_while_committing(transport.log) > 0, transport.log
        assert worker.committed == {TopicPartition(TOPIC, 0): 60}
        assert sorted(routed(transport).items()) == [(o, 1) for o in range(60)]

    run(scenario)


def test_a_failed_commit_reads_both_polls_again_and_loses_or_doubles_nothing() -> None:
    async def scenario() -> None:
        transport = SlowCommits(sources=[TOPIC], partitions={TOPIC: 1}, fail=2)
        worker, bad = scenario_for(transport, {0: 45})
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {TopicPartition(TOPIC, 0): 45}, timeout=25)
        assert "commit-failed" in transport.log
        assert sorted(routed(transport).items()) == [(o, 1) for o in range(45)]
        quarantined = {int(dict(m.headers)["qstreams.errors.offset"]) for m in transport.records(OUTPUTS[1], 0)}
        assert quarantined == bad[0]
        assert worker.committed == {TopicPartition(TOPIC, 0): 45}

    run(scenario)


class LoggedPolls(SlowCommits):
    """Every poll that returns records is logged when it starts."""

    async def poll(self, max_records: int, timeout_ms: int) -> dict[Any, list[Any]]:
        self.log.append("poll")
        out = await super().poll(max_records, timeout_ms)
        if not out:
            self.log.pop(len(self.log) - 1 - self.log[::-1].index("poll"))
        return out


def read_while_waiting(log: list[str]) -> int:
    """Commits during which a poll started after a poll was processed (ahead): read while the worker waits."""
    count, window = 0, None
    for step in log:
        if step == "commit-start":
            window = []
        elif step in ("commit-end", "commit-failed") and window is not None:
            count += "poll" in window[window.index("process") :] if "process" in window else 0
            window = None
        elif window is not None:
            window.append(step)
    return count


def test_the_poll_after_the_one_processed_ahead_is_read_while_the_worker_waits_for_the_commit() -> None:
    """One poll may be processed ahead (the record bound is one poll); once it is, the worker waits for the commit and
    reads the next poll meanwhile (the loop is idle)."""

    async def scenario() -> None:
        transport = LoggedPolls(sources=[TOPIC], partitions={TOPIC: 1})
        transport.delay = 0.3
        worker, _ = scenario_for(transport, {0: 60}, transaction_max_records=10)
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {TopicPartition(TOPIC, 0): 60}, timeout=20)
        assert read_while_waiting(transport.log) > 0, transport.log
        assert sorted(routed(transport).items()) == [(o, 1) for o in range(60)]

    run(scenario)


def test_a_failed_commit_drops_the_poll_read_while_waiting_for_it_and_loses_or_doubles_nothing() -> None:
    async def scenario() -> None:
        transport = LoggedPolls(sources=[TOPIC], partitions={TOPIC: 1}, fail=2)
        transport.delay = 0.3
        worker, bad = scenario_for(transport, {0: 60}, transaction_max_records=10)
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {TopicPartition(TOPIC, 0): 60}, timeout=25)
        failed = transport.log.index("commit-failed")
        started = failed - 1 - transport.log[:failed][::-1].index("commit-start")
        assert read_while_waiting(transport.log[started : failed + 1]) == 1, transport.log  # read, then dropped
        assert sorted(routed(transport).items()) == [(o, 1) for o in range(60)]
        quarantined = {int(dict(m.headers)["qstreams.errors.offset"]) for m in transport.records(OUTPUTS[1], 0)}
        assert quarantined == bad[0]

    run(scenario)
