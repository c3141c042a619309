"""A stopping worker ends: an observer's ``on_stopping`` is waited for at most ``STOP_TIMEOUT_S``."""

from __future__ import annotations

import asyncio

import pytest

import streams.kafka.observers as observers_module
from streams.kafka.observers import WorkerObserver
from streams.testing.transport import InMemoryTransport

from .test_worker_inmemory import TOPIC, worker_for


class Hangs(WorkerObserver):
    """An observer whose ``on_stopping`` never returns."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()

    async def on_stopping(self) -> None:
        self.stopping.set()
        await asyncio.Event().wait()


class Records(WorkerObserver):
    """Notes that its ``on_stopping`` (after the hanging one) was called."""

    stopped = False

    async def on_stopping(self) -> None:
        self.stopped = True


async def _scenario() -> None:
    hangs, after = Hangs(), Records()
    w = worker_for(InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 2}), observers=(hangs, after))
    task = asyncio.create_task(w.run())
    await asyncio.sleep(0.2)
    w.stop()
    done, _ = await asyncio.wait([task], timeout=10.0)
    if not done:
        task.cancel()
    assert done, "the worker waited for an observer's on_stopping without bound"
    task.result()
    assert hangs.stopping.is_set() and after.stopped and w.stopped.is_set()


def test_an_observer_that_never_stops_does_not_keep_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(observers_module, "STOP_TIMEOUT_S", 0.5, raising=False)
    asyncio.run(_scenario())
