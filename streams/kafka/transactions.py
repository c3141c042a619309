"""Exactly-once for :class:`~streams.kafka.batches.BatchWorker`: one Kafka transaction per poll.

The outputs of a poll's batches and the poll's offsets are written in one transaction. Its offsets and its
commit are sent in the background while the next poll is fetched and processed (the broker's round trips
overlap the worker's CPU); the next poll's outputs are sent only after that commit succeeded, in a new
transaction. When a commit fails, the transaction is aborted and both polls are read again from their first
offsets: nothing of the second was sent. Bindings with stages (stream time) keep the strict order, their state
following the batches in the order they commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from streams.kafka.polls import InFlight, PollBatches, Prepared
from streams.kafka.transport import TopicPartition, Transport
from streams.pipeline.records import Message
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.pipeline.binding import Binding

__all__ = ["ExactlyOnce", "InFlight"]

log = logging.getLogger("streams.kafka.worker")
R = TypeVar("R")


class ExactlyOnce(PollBatches):
    """The exactly-once part of the batch worker (a mixin: the worker provides the state and the batch steps)."""

    settings: Settings
    transport: Transport
    bindings: dict[str, Binding]
    _owned: set[TopicPartition]
    _pending: dict[TopicPartition, deque[InFlight]]
    #: the last transaction's offsets and commit, sent in the background; its batches' first offsets and the
    #: batches (read again, or accounted, once it ends); the first offsets of one that failed
    _committing: asyncio.Future[float] | None
    _in_transaction: tuple[dict[TopicPartition, int], list[InFlight]]
    _reread: dict[TopicPartition, int]

    def _done(self, batches: Sequence[InFlight], now: float | None = None) -> None:
        raise NotImplementedError

    async def _reap(self) -> None:
        raise NotImplementedError

    async def _call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """``fn(*args, **kwargs)``: processing a batch (pure, CPU-bound), in a thread while the event loop has
        other work: a transaction committing in the background (adding partitions and offsets, the produce
        requests and ending it are round trips that each need the loop), or batches awaiting acknowledgement
        (committed as soon as acknowledged). Inline, a poll's processing held the loop for its whole duration:
        the "background" commit only progressed, and acknowledged batches were only committed, once it was over.
        Inline when nothing waits (a thread costs more than it saves then). With stages (stream time) too: the
        observers on the loop touch their state only holding its lock (``streams.windows.stream.StreamTime.lock``)."""
        committing = self._committing
        busy = committing is not None and not committing.done()
        if not busy and (self.settings.exactly_once or not self._pending):
            return fn(*args, **kwargs)
        work = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
        while not self.settings.exactly_once and not work.done():  # commit what is acknowledged meanwhile
            waiting = [f for q in self._pending.values() if q for f in (*q[0].futures, *q[0].event_futures)
                       if not f.done()]  # fmt: skip
            if any(q and q[0].done() for q in self._pending.values()):
                await self._reap()  # the caller holds the worker's lock
                continue
            if not waiting:
                break
            await asyncio.wait([work, *waiting], return_when=asyncio.FIRST_COMPLETED)
        return await work

    async def _transaction(self, batches: Sequence[tuple[TopicPartition, Sequence[Message]]], polled_at: float) -> None:
        """The outputs of one poll and its offsets in one Kafka transaction (see the module docstring)."""
        transport = self.transport
        firsts = {tp: ms[0].offset for tp, ms in reversed(batches) if tp in self._owned}
        prepared: list[Prepared] | None = None
        if self._committing is not None and not self._staged:
            prepared = await self._prepare(batches)
        if not await self._settle():  # the previous poll is read again: this one after it, from its first offsets
            for tp, first in firsts.items():
                if tp in self._owned and tp not in self._reread:
                    transport.seek(tp, first)
            return
        try:
            await transport.begin_transaction()
            if prepared is None:
                prepared = await self._prepare(batches)
            await self._submit_poll(prepared, polled_at, reap=False)
        except Exception as exc:
            await self._aborted(exc, firsts)
            return
        done = [b for q in self._pending.values() for b in q]
        self._pending.clear()
        offsets = {b.tp: b.next_offset for b in done}
        self._committing = asyncio.ensure_future(self._commit_transaction(offsets))
        self._in_transaction = (firsts, done)

    async def _commit_transaction(self, offsets: dict[TopicPartition, int]) -> float:
        """Send the offsets and commit; returns when it committed (``perf_counter``), for the batches' latency."""
        if offsets:
            await self.transport.send_offsets_to_transaction(offsets, self.settings.app_id)
        await self.transport.commit_transaction()
        return time.perf_counter()

    @property
    def _staged(self) -> bool:
        return any(b.stages for b in self.bindings.values())

    async def _settle(self) -> bool:
        """Await the transaction committing in the background, if any: True when it committed (or none was open)."""
        committing, self._committing = self._committing, None
        self._reread = {}
        if committing is None:
            return True
        firsts, done = self._in_transaction
        self._in_transaction = ({}, [])
        try:
            committed_at = await committing
        except Exception as exc:
            await self._aborted(exc, firsts)
            self._reread = firsts
            return False
        self._done(done, committed_at)
        return True

    async def _aborted(self, exc: BaseException, firsts: dict[TopicPartition, int]) -> None:
        log.error("transaction failed, aborting; the poll is read again: %r", exc)
        with contextlib.suppress(Exception):
            await self.transport.abort_transaction()
        for tp, first in firsts.items():
            if tp in self._owned:
                self.transport.seek(tp, first)
        self._pending.clear()
        await asyncio.sleep(1.0)
