"""Processing a poll leaves the event loop free for what waits on it: the last transaction's commit
(exactly-once) and the commits of acknowledged batches (at-least-once).

Processing is CPU-bound and was called inline: while it ran, a transaction "committing in the background" could
not advance (each of its round trips needs the loop), nor could a batch acknowledged meanwhile be committed.
Here processing blocks (``time.sleep``) and the transport's commit / acknowledgement needs the loop: the commit
must end *during* the next poll's processing. Without the thread offload (``ExactlyOnce._call``) it ends after.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from streams.kafka.transport import TopicPartition
from streams.testing.transport import InMemoryTransport

from .test_exactly_once_overlap import OUTPUTS, SlowCommits, routed
from .test_worker_inmemory import TOPIC, feed, run, running, worker_for

PROCESSING_S = 0.08  # longer than a commit (20 ms of round trips)


def blocking(worker: Any, log: list[str]) -> None:
    """The binding's calls log their start and end and hold the thread ``PROCESSING_S`` (CPU-bound work)."""
    binding = worker.bindings[TOPIC]
    one, poll = binding.process, binding.process_poll

    def held(call: Any) -> Any:
        def wrapped(arg: Any, *, worker_id: str) -> Any:
            log.append("process-start")
            time.sleep(PROCESSING_S)
            try:
                return call(arg, worker_id=worker_id)
            finally:
                log.append("process-end")

        return wrapped

    binding.process, binding.process_poll = held(one), held(poll)


def ended_during_processing(log: list[str], end: str) -> int:
    """How many ``end`` steps fall between a ``process-start`` and its ``process-end``."""
    inside, count = False, 0
    for step in log:
        inside = step == "process-start" or (inside and step != "process-end")
        count += step == end and inside
    return count


def test_the_last_transaction_commits_while_the_next_poll_is_processed() -> None:
    async def scenario() -> None:
        transport = SlowCommits(sources=[TOPIC], partitions={TOPIC: 2} | dict.fromkeys(OUTPUTS, 2))
        for partition in (0, 1):
            feed(transport, 40, partition, seed=partition + 5)
        worker = worker_for(transport, exactly_once=True, batch_max_records=20)
        blocking(worker, transport.log)
        async with running(worker):
            everything = {TopicPartition(TOPIC, 0): 40, TopicPartition(TOPIC, 1): 40}
            await transport.wait_for(lambda: transport.committed == everything, timeout=20)
        assert ended_during_processing(transport.log, "commit-end") > 0, transport.log
        assert routed_by_partition(transport) == {(p, o): 1 for p in (0, 1) for o in range(40)}  # each output once

    run(scenario)


class LateAcks(InMemoryTransport):
    """Outputs are acknowledged 20 ms after they are sent (a broker round trip); commits are logged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log: list[str] = []

    async def send_batch(self, topic: str, partition: int, records: Any) -> list[asyncio.Future[Any]]:
        return [_late(f) for f in await super().send_batch(topic, partition, records)]

    async def commit(self, offsets: Any) -> None:
        await super().commit(offsets)
        self.log.append("commit")


def _late(done: asyncio.Future[Any]) -> asyncio.Future[Any]:
    loop = asyncio.get_running_loop()
    late: asyncio.Future[Any] = loop.create_future()

    def settle() -> None:
        if done.exception() is not None:
            late.set_exception(done.exception())  # type: ignore[arg-type]
        else:
            late.set_result(done.result())

    loop.call_later(0.02, settle)
    return late


def test_acknowledged_batches_are_committed_while_the_next_poll_is_processed() -> None:
    async def scenario() -> None:
        transport = LateAcks(sources=[TOPIC], partitions={TOPIC: 1})
        feed(transport, 80, 0, seed=9)
        worker = worker_for(transport, batch_max_records=20)
        blocking(worker, transport.log)
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {TopicPartition(TOPIC, 0): 80}, timeout=20)
        assert ended_during_processing(transport.log, "commit") > 0, transport.log
        assert sorted(routed(transport).elements()) == list(range(80))

    run(scenario)


def routed_by_partition(transport: InMemoryTransport) -> dict[tuple[int, int], int]:
    """(source partition, source offset) -> how many outputs carry it (the output partition is the source's)."""
    seen: dict[tuple[int, int], int] = {}
    for topic in OUTPUTS:
        for partition, log in enumerate(transport.logs.get(topic, [])):
            for m in log:
                offset = dict(m.headers).get("qstreams.errors.offset")
                assert m.timestamp_ms is not None
                key = (partition, int(offset) if offset is not None else m.timestamp_ms - 1_740_787_200_000)
                seen[key] = seen.get(key, 0) + 1
    return seen


class _Observed:
    """A stage that changes nothing and notes the thread each batch went through it on."""

    judges_windows = False

    def __init__(self) -> None:
        self.threads: list[int] = []

    def amend(self, messages: Any, frame: Any, rows: Any, report: Any, dead: Any, irregular: Any = ()) -> Any:
        self.threads.append(threading.get_ident())
        return report, []


def test_batches_with_stages_are_processed_in_a_thread_too() -> None:
    """Stages (stream time) share their state with observers on the loop, which take its lock
    (``streams.windows.stream.StreamTime.lock``): their batches leave the loop free for commits as well."""

    async def scenario() -> None:
        transport = LateAcks(sources=[TOPIC], partitions={TOPIC: 1})
        feed(transport, 80, 0, seed=9)
        worker = worker_for(transport, batch_max_records=20)
        stage = _Observed()
        worker.bindings[TOPIC].stages.append(stage)
        blocking(worker, transport.log)
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {TopicPartition(TOPIC, 0): 80}, timeout=20)
        assert len(stage.threads) >= 4 and set(stage.threads) - {threading.get_ident()}
        assert ended_during_processing(transport.log, "commit") > 0, transport.log
        assert sorted(routed(transport).elements()) == list(range(80))

    run(scenario)


class HeldAcks(InMemoryTransport):
    """Outputs are acknowledged only when the test releases them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.holding: list[tuple[asyncio.Future[Any], asyncio.Future[Any]]] = []
        self.released = False

    async def send_batch(self, topic: str, partition: int, records: Any) -> list[asyncio.Future[Any]]:
        if self.released:
            return await super().send_batch(topic, partition, records)
        out = []
        for done in await super().send_batch(topic, partition, records):
            held: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self.holding.append((done, held))
            out.append(held)
        return out

    def release(self) -> None:
        self.released = True
        for done, held in self.holding:
            if not held.done():
                held.set_result(done.result())


def test_no_more_than_two_polls_records_await_acknowledgement() -> None:
    """Reading further ahead only queues batches behind the producer: their wait is added to their latency."""

    async def scenario() -> None:
        transport = HeldAcks(sources=[TOPIC], partitions={TOPIC: 1})
        feed(transport, 200, 0, seed=4)
        worker = worker_for(transport, batch_max_records=20, max_inflight_batches=8)
        processed: list[int] = []
        process = worker.bindings[TOPIC].process

        def counted(messages: Any, *, worker_id: str) -> Any:
            processed.append(len(messages))
            return process(messages, worker_id=worker_id)

        worker.bindings[TOPIC].process = counted  # type: ignore[method-assign]
        async with running(worker):
            await asyncio.sleep(0.5)  # less than the 1 s a wait for acknowledgements lasts
            ahead = sum(processed)
            transport.release()
            await transport.wait_for(lambda: transport.committed == {TopicPartition(TOPIC, 0): 200}, timeout=20)
        assert 40 <= ahead <= 60, processed  # two polls in flight, and the poll that found them unacknowledged

    run(scenario)
