"""Red team 3: a failure while fitting a batch's outputs to their topics (``OutputLimits.fit``) is a processing
failure: retried with backoff, then the batch dead-lettered as ``internal.<Exception>``; never a dead worker or a
stalled partition (``docs/delivery.md``, "Poison messages")."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

import streams.kafka.outputs as outputs_module
from streams.pipeline.records import BatchResult, Message
from streams.testing.transport import InMemoryTransport
from tests.unit.kafka.test_worker_faults import DLQ, QUARANTINE, VALIDATED, headers_of, record
from tests.unit.kafka.test_worker_inmemory import TOPIC, TP0, TP1, run, running, worker_for

POISON = b"POISON-FIT"


class FitBugError(Exception):
    """Stands for a data-dependent bug in fitting (e.g. an output the fitting code cannot trace)."""


def _patch_fit(monkeypatch: pytest.MonkeyPatch, *, times: int | None) -> list[int]:
    """``fit`` raising on batches holding the poison record (``times`` times, None: always); returns the calls."""
    real, calls = outputs_module.fit, list[int]()

    def fit(result: BatchResult, messages: Sequence[Message], *args: object, **kwargs: object) -> BatchResult:
        poisoned = any(POISON in (m.value or b"") for m in messages)
        if poisoned:
            calls.append(len(messages))
            if times is None or len(calls) <= times:
                raise FitBugError("cannot fit this batch")
        return real(result, messages, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(outputs_module, "fit", fit)
    return calls


def _offsets(topic_records: Sequence[Message]) -> list[tuple[int, int]]:
    out = []
    for m in topic_records:
        h = headers_of(m)
        out.append((int(h["qstreams.errors.partition"]), int(h["qstreams.errors.offset"])))
    return sorted(out)


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
@pytest.mark.parametrize("partitions", [1, 2], ids=["alone", "poll-together"])
def test_a_batch_whose_fitting_always_fails_is_dead_lettered_and_the_worker_goes_on(
    partitions: int, exactly_once: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _patch_fit(monkeypatch, times=None)
    transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: partitions})
    worker = worker_for(transport, batch_retries=2, exactly_once=exactly_once)

    async def scenario() -> None:
        for i in range(4):
            transport.produce(TOPIC, record(i, merchant_id=POISON.decode() if i == 2 else "m1"), partition=0)
        for j in range(3 * (partitions - 1)):
            transport.produce(TOPIC, record(10 + j), partition=1)
        async with running(worker) as task:
            want = {TP0: 4} | ({TP1: 3} if partitions == 2 else {})
            await transport.wait_for(lambda: transport.committed == want or task.done(), timeout=15)
            assert not task.done(), task.exception()
            assert transport.committed == want
        dead = transport.records(DLQ)
        assert _offsets(dead) == [(0, 0), (0, 1), (0, 2), (0, 3)]  # the whole batch, nothing lost
        assert {headers_of(m)["qstreams.errors.class"] for m in dead} == {"internal.FitBugError"}
        assert [m.value for m in dead] == [m.value for m in transport.records(TOPIC, 0)]
        assert len(transport.records(VALIDATED)) + len(transport.records(QUARANTINE)) == 3 * (partitions - 1)
        assert len(calls) >= 3  # the first attempt and batch_retries=2 retries

    run(scenario)


@pytest.mark.parametrize("partitions", [1, 2], ids=["alone", "poll-together"])
def test_a_batch_whose_fitting_fails_once_is_retried_and_routed_normally(
    partitions: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _patch_fit(monkeypatch, times=1)
    transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: partitions})
    worker = worker_for(transport, batch_retries=2)

    async def scenario() -> None:
        for i in range(4):
            transport.produce(TOPIC, record(i, merchant_id=POISON.decode() if i == 2 else "m1"), partition=0)
        if partitions == 2:
            transport.produce(TOPIC, record(10), partition=1)
        async with running(worker) as task:
            want = {TP0: 4} | ({TP1: 1} if partitions == 2 else {})
            await transport.wait_for(lambda: transport.committed == want or task.done(), timeout=15)
            assert not task.done(), task.exception()
        assert transport.records(DLQ) == []
        assert len(transport.records(VALIDATED)) == 4 + (partitions - 1)
        assert len(calls) == 2

    run(scenario)
