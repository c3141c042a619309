"""Reading the next poll while the current one is processed ("poll ahead", ``STREAMS_POLL_AHEAD``, off by default:
measured in ``docs/delivery.md``; a mixin of the batch worker).

On a backlog the event loop's share of a record (aiokafka's ``getmany`` unpacking it, ~4 us) and the processing
thread's (decode, validation, outputs; polars releases the GIL for much of it) can overlap on two cores: after a
full poll the worker starts the next ``transport.poll`` as a task, then processes the current poll (in a thread
while that read runs: ``ExactlyOnce._call``), and the next cycle takes the poll read meanwhile. Every poll goes
through :attr:`ReadAhead._next`, so a rebalance sees it. An exactly-once worker also reads the next poll while it
waits for the last transaction's commit (``ExactlyOnce._read_while_committing``), whatever ``poll_ahead`` says; the
same rules hold for that poll:

* **revoke**: the poll read before it holds records of the old assignment. A poll still being read is cancelled (a
  ``getmany`` drains its records synchronously, so a cancelled one took none; records a fill held are of partitions
  revoked, read again from the committed offset by whoever gets them: the protocol is eager); one read already
  loses the revoked partitions. No poll is read ahead from a revoke until the assignment that follows it.
* **rewind** (a retried batch, an aborted transaction, polls processed ahead dropped): the partition's position goes
  back (``PollBatches._rewind``) and batches read before, at later offsets, are dropped until the re-read reaches
  the rewound offset (``PollBatches._behind``), whether they were read ahead or not.
* **pause**: a partition paused for the events topic (``EventDelivery``) after its records were read ahead is
  rewound to them instead of being processed (:meth:`ReadAhead._unread_paused`); a partition paused for a retry
  is rewound already.
* **stop**: the poll read ahead is awaited (a bounded wait) or cancelled, and its records dropped: nothing of it was
  sent or committed, so the next owner reads it again.

A poll read ahead is never submitted before the current one: the order of a partition's records is kept.
"""

from __future__ import annotations

import asyncio
import logging
import time

from streams.kafka.transport import TopicPartition, Transport
from streams.pipeline.records import Message
from streams.settings import Settings

__all__ = ["Polled", "Read", "ReadAhead"]

log = logging.getLogger("streams.kafka.worker")
Polled = dict[TopicPartition, list[Message]]
#: a poll's records and when the client returned them (``perf_counter``): a batch's latency runs from there
Read = tuple[Polled, float]


class ReadAhead:
    """The poll being read (ahead or not) and its interplay with rebalances, pauses and the stop."""

    settings: Settings
    transport: Transport
    #: the poll being read (started ahead, during the last poll's processing, or by ``_poll``), until taken
    _next: asyncio.Task[Read] | None
    #: from a revoke to the assignment that follows: no poll is read ahead meanwhile
    _rebalancing: bool
    #: the read ahead due later in this poll's processing; the last read's and the last processing's seconds
    _ahead_timer: asyncio.TimerHandle | None
    _read_s: float
    _processing: tuple[float, float]  # (started, seconds of the last one)

    def _rewind(self, tp: TopicPartition, offset: int) -> None:
        raise NotImplementedError

    def _reading(self, max_records: int, timeout_ms: int) -> asyncio.Task[Read]:
        """The poll being read, else a new one started (a read ahead due later starts now)."""
        if self._ahead_timer is not None:
            self._ahead_timer.cancel()
            self._ahead_timer = None
        if self._next is None:
            self._next = asyncio.ensure_future(self._read(max_records, timeout_ms))
        return self._next

    async def _read(self, max_records: int, timeout_ms: int) -> Read:
        started = time.perf_counter()
        polled = await self.transport.poll(max_records, timeout_ms)
        now = time.perf_counter()
        self._read_s = now - started
        return polled, now

    def _read_ahead(self, max_records: int, timeout_ms: int) -> None:
        """Read the next poll while the current one is processed (when ``poll_ahead`` allows), started so that it
        ends about when the processing does, by the last poll's times: a poll read early only waits (its latency
        runs from its read), a late one leaves the loop idle."""
        self._processing = (time.perf_counter(), self._processing[1])
        if not self.settings.poll_ahead or self._rebalancing or self._next is not None:
            return
        delay = self._processing[1] - 2 * self._read_s
        if delay < 0.002:
            self._reading(max_records, timeout_ms)
        else:
            self._ahead_timer = asyncio.get_running_loop().call_later(delay, self._reading, max_records, timeout_ms)

    def _processed(self) -> None:
        """The poll's processing ended (the worker polls again): its seconds time the next read ahead."""
        started = self._processing[0]
        if started:
            self._processing = (0.0, time.perf_counter() - started)

    def _revoke_read(self, revoked: set[TopicPartition]) -> None:
        """At a revoke: cancel the poll being read, or drop the revoked partitions from the poll read (see above)."""
        self._rebalancing = True
        if self._ahead_timer is not None:
            self._ahead_timer.cancel()
            self._ahead_timer = None
        task = self._next
        if task is None or task is asyncio.current_task():  # the in-memory transport rebalances within its poll
            return
        if not task.done():
            task.cancel()  # _poll sees an empty poll
        elif not task.cancelled() and task.exception() is None:
            polled = task.result()[0]
            for tp in revoked:
                if polled.pop(tp, None) is not None:
                    log.info("dropping the records of %s[%d] read before its revoke", tp.topic, tp.partition)

    def _unread_paused(self, polled: Polled, paused: set[TopicPartition]) -> None:
        """Rewind the partitions of ``polled`` paused since it was read (the events topic refuses writes)."""
        for tp in paused & polled.keys():
            self._rewind(tp, polled.pop(tp)[0].offset)

    async def _end_read(self) -> None:
        """Stop: drop the poll being read (awaited briefly, then cancelled); it is read again by the next owner."""
        if self._ahead_timer is not None:
            self._ahead_timer.cancel()
            self._ahead_timer = None
        task, self._next = self._next, None
        if task is None:
            return
        if not task.done():
            await asyncio.wait([task], timeout=self.settings.batch_max_latency_ms / 1000 + 1.0)
        if not task.done():
            task.cancel()
            await asyncio.wait([task])
        if not task.cancelled() and task.exception() is not None:
            log.info("the poll read ahead at the stop failed: %r", task.exception())
