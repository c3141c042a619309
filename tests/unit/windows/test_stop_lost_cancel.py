"""A stopping worker ends even when the stream-time tick task loses its cancellation.

On Python 3.11 ``asyncio.wait_for`` returns its awaitable's result instead of raising when a cancel lands in the
loop iteration in which that awaitable completed. The state reader awaited end offsets in one, inside the tick
task: the task went on ticking, ``on_stopping`` awaited it without bound and the bench's ``gate-st`` worker never
stopped after its last commit. The reader here loses the cancellation deterministically."""

from __future__ import annotations

import asyncio

from streams.kafka.batches import BatchWorker
from streams.pipeline.records import Message
from streams.windows.observer import StreamTimeObserver, TransportStateReader

from .test_worker_in_memory import Member, worker


class LosesCancel(TransportStateReader):
    """Reads of the tick task take ``delay`` and swallow one cancellation (what ``wait_for`` does on 3.11)."""

    def __init__(self, transport: Member, delay: float) -> None:
        super().__init__(transport)
        self.delay, self.lost, self.ticking = delay, 0, asyncio.Event()
        self.observer: StreamTimeObserver | None = None

    async def read(self, topic: str, partition: int, start: int = 0) -> tuple[list[Message], int]:
        if self.observer is not None and asyncio.current_task() is self.observer._task:
            self.ticking.set()
            try:
                await asyncio.sleep(self.delay)
            except asyncio.CancelledError:
                self.lost += 1  # swallowed: the task goes on
        return await super().read(topic, partition, start)


def _stream_time(w: BatchWorker) -> StreamTimeObserver:
    found = [o for o in w.observers.observers if isinstance(o, StreamTimeObserver)]
    assert len(found) == 1
    return found[0]


async def _lost_cancel() -> None:
    cluster = Member(None, {0, 1, 2})  # partition 0: this worker merges, its ticks read the state topic
    w = worker(cluster, "w1")
    observer = _stream_time(w)
    reader = LosesCancel(cluster, delay=0.5)
    reader.observer, observer.reader = observer, reader
    task = asyncio.create_task(w.run())
    await asyncio.wait_for(reader.ticking.wait(), 10.0)  # the tick task is inside a read
    w.stop()
    done, _ = await asyncio.wait([task], timeout=10.0)
    if not done:
        task.cancel()
    assert done, "the worker did not stop: on_stopping awaited a tick task that lost its cancellation"
    assert reader.lost == 1  # the cancellation was indeed lost
    assert observer._task is not None and observer._task.done()  # ... and the tick task ended all the same
    task.result()


def test_worker_stops_when_the_tick_task_loses_its_cancellation() -> None:
    asyncio.run(_lost_cancel())
