"""The observer never touches a stream's state while a batch of the stream is being processed in a thread.

The worker processes a poll in a thread while the event loop commits the batches before it; the observer's tick
(heartbeats, expiry of uniqueness claims, closing merged windows) and its assignment hooks run on the loop. Here a
batch's processing is held inside ``StreamTime.process`` (before it accounts the batch in the partitions' state):
the tick and a revocation must wait for it, and once it is done see the batch whole.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from streams.kafka.transport import TopicPartition
from streams.pipeline.binding import Binding
from streams.pipeline.records import BatchResult
from streams.windows import stream as stream_module
from streams.windows.observer import StreamTimeObserver

from .test_tick_heartbeat import TICK_MS, TOPIC, TP, cluster, heartbeats, member, produce

#: loop turns given to the observer while the batch is held (nothing it awaits is slow: in-memory transport)
TURNS = 50


def held(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Processing a batch stops inside ``StreamTime.process`` (its window partials) until ``release`` is set."""
    entered, release = threading.Event(), threading.Event()
    partials = stream_module.partition_partials

    def holding(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(10.0)
        return partials(*args, **kwargs)

    monkeypatch.setattr(stream_module, "partition_partials", holding)
    return entered, release


async def while_processing(
    monkeypatch: pytest.MonkeyPatch, binding: Binding, messages: Any, hook: Callable[[], Any]
) -> tuple[bool, BatchResult]:
    """Run ``hook`` (an observer call) while the batch is processed in a thread; whether it ended before the batch."""
    entered, release = held(monkeypatch)
    work = asyncio.ensure_future(asyncio.to_thread(binding.process, messages, worker_id="w1"))
    assert await asyncio.to_thread(entered.wait, 10.0)
    call = asyncio.ensure_future(hook())
    for _ in range(TURNS):
        await asyncio.sleep(0)
    early = call.done()
    release.set()
    result = await work
    await call
    return early, result


def test_the_tick_waits_for_a_batch_being_processed_and_then_sees_it_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> tuple[bool, list[Any], Any]:
        transport = cluster()
        binding, observer = await member(transport, "w1")
        first = produce(transport, 3)
        binding.process(first, worker_id="w1")
        observer.on_commit(TP, first[-1].offset + 1, 0.0)  # the first batch is committed
        before = len(heartbeats(transport))
        second = produce(transport, 3)
        early, _ = await while_processing(monkeypatch, binding, second, lambda: observer.tick(TICK_MS))
        return early, heartbeats(transport)[before:], observer.stages[TOPIC].stream.states[0]

    early, sent, state = asyncio.run(scenario())
    assert not early  # it waited for the batch
    # the second batch is processed, not committed: the tick tells nothing of it, nor of the first alone any more
    assert sent == [] and state.counted_through == 5 and state.settled_through == 2


def test_a_revocation_waits_for_a_batch_being_processed(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> tuple[bool, BatchResult, StreamTimeObserver]:
        transport = cluster()
        binding, observer = await member(transport, "w1")
        messages = produce(transport, 4)
        early, result = await while_processing(
            monkeypatch, binding, messages, lambda: observer.on_revoke({TopicPartition(TOPIC, 0)})
        )
        return early, result, observer

    early, result, observer = asyncio.run(scenario())
    assert not early
    assert result.counts == {"valid": 4, "quarantined": 0, "dead_lettered": 0}
    assert observer.stages[TOPIC].stream.states == {}  # revoked after the batch, not under it
