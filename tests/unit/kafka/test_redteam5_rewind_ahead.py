"""Red team 5: a batch retried while polls processed ahead (exactly-once) re-read a partition after an abort."""

from __future__ import annotations

from collections import Counter
from typing import Any

from streams.kafka.transport import TopicPartition

from .test_exactly_once_overlap import SlowCommits, routed
from .test_worker_inmemory import TOPIC, feed, run, running, worker_for

P0 = TopicPartition(TOPIC, 0)


def test_a_batch_retried_after_an_abort_while_the_re_read_is_processed_ahead_doubles_nothing() -> None:
    """The second transaction fails (the partition is read again from 10); the poll read while waiting for it is
    dropped in an empty transaction, and the re-read polls are processed ahead while that one commits. The batch
    from 20 then fails once: the partition must be read again from 20, not from the abort's 10 (whose re-read was
    processed already and is sent in the next transaction): from 10, records 10..19 were written twice."""

    async def scenario() -> None:
        transport = SlowCommits(sources=[TOPIC], partitions={TOPIC: 1}, fail=2)
        transport.delay = 0.3
        _, bad = feed(transport, 80, 0, seed=3)
        worker = worker_for(transport, exactly_once=True, batch_max_records=10, transaction_max_records=20,
                            transaction_max_latency_ms=5000, poll_ahead=False)  # fmt: skip
        calls = worker.bindings[TOPIC].process
        seen: Counter[int] = Counter()

        def process(messages: Any, *, worker_id: str) -> Any:
            first = messages[0].offset
            seen[first] += 1
            if first == 20 and seen[first] == 2:  # once, when it is processed again after the abort
                raise RuntimeError("a transient failure")
            return calls(messages, worker_id=worker_id)

        worker.bindings[TOPIC].process = process  # type: ignore[method-assign]
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {P0: 80}, timeout=25)
        assert seen[20] >= 3, seen  # the retry happened (a scenario that cannot miss it)
        assert sorted(routed(transport).items()) == [(o, 1) for o in range(80)]
        quarantined = {int(dict(m.headers)["qstreams.errors.offset"]) for m in transport.records(f"{TOPIC}.quarantine")}
        assert quarantined == bad

    run(scenario)
