"""Red team 3: a heavy message (a 1 MB NDJSON message of 333k tiny records took ~23 s) must not hold the event loop.

Processing ran inline whenever nothing awaited acknowledgement: the loop, which also sends the consumer's heartbeats
(a 10 s session timeout), commits other partitions and serves ``/metrics``, was held for the whole call. Now a call
whose messages may hold more than ``INLINE_MAX_RECORDS`` records runs in a thread. The tests make the loop's
progress observable without timing: the binding's ``process`` waits for a tick that only the event loop can give
(inline, it never comes and the wait gives up)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

import streams.kafka.transactions as transactions
from streams.kafka.transactions import records_in
from streams.pipeline.binding import Binding
from streams.pipeline.records import BatchResult, Message
from streams.testing import generate_feature_records
from streams.testing.transport import InMemoryTransport
from tests.unit.kafka.test_worker_faults import DLQ, QUARANTINE, VALIDATED, record
from tests.unit.kafka.test_worker_inmemory import TOPIC, TP0, TP1, run, running, worker_for

NDJSON = (("content-type", b"application/x-ndjson"),)


class LoopWitness:
    """A binding whose calls record whether the event loop ran while they were processing."""

    def __init__(self, inner: Binding, loop: asyncio.AbstractEventLoop) -> None:
        self.inner, self.loop, self.loop_ran = inner, loop, list[bool]()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _witness(self) -> None:
        ticked = threading.Event()
        self.loop.call_soon_threadsafe(ticked.set)  # runs only when the loop gets control
        self.loop_ran.append(ticked.wait(timeout=1.0))

    def process(self, messages: Sequence[Message], *, worker_id: str) -> BatchResult:
        self._witness()
        return self.inner.process(messages, worker_id=worker_id)

    def process_poll(self, batches: Sequence[Sequence[Message]], *, worker_id: str) -> list[BatchResult]:
        self._witness()
        return self.inner.process_poll(batches, worker_id=worker_id)


def test_records_in_counts_a_message_per_value_and_its_lines() -> None:
    ms = [Message(TOPIC, 0, 0, b'{"a":1}\n' * 5, None, NDJSON, None), Message(TOPIC, 0, 1, None, None, (), None),
          Message(TOPIC, 0, 2, b"{}", None, (), None)]  # fmt: skip
    assert records_in([ms[:1], ms[1:]]) == 3 + 5


def test_records_in_counts_the_lines_of_any_value_among_single_line_ones() -> None:
    ones = [Message(TOPIC, 0, i, b'{"a":1}', None, (), None) for i in range(4)]
    lines = Message(TOPIC, 1, 0, b'{"a":1}\n{"a":2}\n', None, NDJSON, None)
    assert records_in([ones]) == 4
    assert records_in([ones, [lines]]) == 5 + 2
    assert records_in([[lines], ones, []]) == 5 + 2
    assert records_in([]) == 0


@pytest.mark.parametrize("partitions", [1, 2], ids=["alone", "poll-together"])
def test_a_heavy_ndjson_message_is_processed_off_the_event_loop(
    partitions: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transactions, "INLINE_MAX_RECORDS", 500)
    transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: partitions})
    worker = worker_for(transport)
    lines = b"".join(orjson.dumps(r) + b"\n" for r in generate_feature_records(1000, seed=21).records)

    async def scenario() -> None:
        witness = LoopWitness(worker.bindings[TOPIC], asyncio.get_running_loop())
        worker.bindings[TOPIC] = witness  # type: ignore[assignment]
        transport.produce(TOPIC, lines, headers=NDJSON, partition=0)
        if partitions == 2:
            transport.produce(TOPIC, record(2000), partition=1)
        async with running(worker):
            want = {TP0: 1} | ({TP1: 1} if partitions == 2 else {})
            await transport.wait_for(lambda: transport.committed == want, timeout=20)
        assert witness.loop_ran == [True]  # the heavy call let the loop run: in a thread
        assert len(transport.records(VALIDATED)) == partitions and not transport.records(DLQ)
        assert not transport.records(QUARANTINE)

    run(scenario)


def test_a_light_poll_is_still_processed_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The measured choice stands for ordinary polls: inline when nothing waits (``docs/delivery.md``)."""
    transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 1})
    worker = worker_for(transport)

    async def scenario() -> None:
        witness = LoopWitness(worker.bindings[TOPIC], asyncio.get_running_loop())
        worker.bindings[TOPIC] = witness  # type: ignore[assignment]
        for i in range(3):
            transport.produce(TOPIC, record(i))
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {TP0: 3}, timeout=20)
        assert witness.loop_ran == [False]

    run(scenario)
