"""A worker whose merger partition is revoked while a tick reads the internal topic stops merging.

The worker consuming partition 0 of a source topic merges the stream's partials and publishes its window
summaries (``docs/stream-time.md``). Found by red team 8: the tick reads the internal topic (an await) and then
stored its merger back; a rebalance revoking partition 0 during that read popped the merger, and the tick put it
back. The worker, no longer the owner, then merged and published every window of the stream for the rest of its
life next to the new owner: every summary twice, and two writers of ``closed`` markers and tombstones. Likewise a
revoke and a new assignment during the read: the tick replaced the merger just restored with its stale one.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from streams.pipeline.records import Message
from streams.windows.observer import StreamTimeObserver

from .test_tick_heartbeat import TOPIC, TP, cluster, member, produce, write


class Held:
    """A state reader whose reads wait, once ``hold`` is set, until ``release`` is."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.hold, self.waiting, self.release = False, asyncio.Event(), asyncio.Event()

    async def read(self, topic: str, partition: int, start: int = 0) -> tuple[list[Message], int]:
        if self.hold:
            self.waiting.set()
            await self.release.wait()
        return await self.inner.read(topic, partition, start)  # type: ignore[attr-defined]


async def revoked_during_a_tick(assign_again: bool) -> tuple[StreamTimeObserver, object]:
    transport = cluster()
    binding, observer = await member(transport, "w1")
    await write(transport, binding, produce(transport, 3), "w1")
    held = Held(observer.reader)
    observer.reader = held
    held.hold = True
    tick = asyncio.ensure_future(observer.tick(int(datetime.now(UTC).timestamp() * 1000)))
    await held.waiting.wait()  # the tick reads the internal topic
    await observer.on_revoke({TP})  # a rebalance takes partition 0 away
    fresh = None
    if assign_again:
        held.hold = False
        await observer.on_assign({TP})  # ... and gives it back: a merger restored from the topic
        fresh = observer.mergers[TOPIC][0]
    held.release.set()
    await tick
    return observer, fresh


def test_a_merger_revoked_during_a_tick_is_not_put_back() -> None:
    observer, _ = asyncio.run(revoked_during_a_tick(assign_again=False))
    assert TOPIC not in observer.mergers


def test_a_merger_restored_during_a_tick_is_not_replaced_by_the_stale_one() -> None:
    observer, fresh = asyncio.run(revoked_during_a_tick(assign_again=True))
    assert fresh is not None and observer.mergers[TOPIC][0] is fresh
