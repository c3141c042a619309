"""Exactly-once for :class:`~streams.kafka.batches.BatchWorker`: the outputs of one or more polls and their offsets
in one Kafka transaction.

A transaction's round trips (adding its partitions and the group, the offsets, ending it; about five, serial in
the client) cost the same whatever it holds. Its offsets and its commit are sent in the background; meanwhile
the worker keeps fetching and processing the next polls (in a thread) while they come back full (a backlog), up
to ``transaction_max_records`` and while the first of them would still commit within ``transaction_max_latency_ms``
(measured commit and processing times), and sends them all in the next transaction once the commit succeeded:
under a backlog a transaction holds what was processed during the last one's commit; when the worker has to wait
for that commit, it reads the next poll meanwhile (:mod:`streams.kafka.ahead`). ``transaction_interval_ms`` (0 by
default) also keeps a transaction open after its polls were sent, for more full polls, up to that long after its
first poll (as Kafka Streams' ``commit.interval.ms``). A poll that is not full (the worker caught up), an idle
poll, a revoke or a stop commits at once; a revoke drops the polls processed ahead (read again). When a commit
fails, the transaction is aborted and every poll it held, and the polls processed meanwhile, are read again from
their first offsets: nothing of the latter was sent. Bindings with stages (stream time) keep the strict order,
one transaction per poll, their state following the batches in the order they commit. Measured:
``docs/delivery.md`` (Exactly-once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar, cast

from streams.kafka.polls import InFlight, PollBatches, Prepared
from streams.kafka.transport import TopicPartition, Transport
from streams.pipeline.records import Message
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.kafka.backpressure import EventDelivery
    from streams.pipeline.binding import Binding

__all__ = [
    "INLINE_MAX_RECORDS",
    "Ahead",
    "ExactlyOnce",
    "InFlight",
    "OpenTransaction",
    "records_in",
]

log = logging.getLogger("streams.kafka.worker")
R = TypeVar("R")
_VALUE = attrgetter("value")

# exactly-once, ``transaction_max_latency_ms``: the latency a transaction may grow to. While the last transaction
# commits, a poll processed ahead is followed by another (the next transaction grows) only if the first one's records
# would still be committed within it: their age, a poll's processing and a commit, as last measured. A transaction
# costs about five coordinator round trips whatever it holds; when they take as long as a poll's processing
# (prediction records) two polls share them, when polls are slower (card records) or commits slow each poll stays
# alone
_SMOOTHING = 0.3  # weight of the newest measurement in the commit and processing estimates

#: records one call may process on the event loop (inline); a call with more (by :func:`records_in`) runs in a
#: thread: a 1 MB NDJSON message of 333k tiny records took ~23 s inline, holding the consumer's heartbeats (the
#: session timeout is 10 s), the commits and ``/metrics`` all along. 50k records inline: ~0.4-0.7 s of JSON
#: records, ~2.3 s of tiny NDJSON records (46 us each, measured), within the session timeout
INLINE_MAX_RECORDS = 50_000


def records_in(batches: Sequence[Sequence[Message]]) -> int:
    """An upper estimate of the records in ``batches``: one per message plus its newlines (NDJSON lines).

    The values are joined and searched once (``memchr``) and their newlines counted only when there are some:
    counting them value by value cost ~0.6 µs per record (a poll of 5000 card records: ~3 ms on the loop)."""
    messages = sum(map(len, batches))
    joined = b"".join(filter(None, map(_VALUE, chain.from_iterable(batches))))
    return messages + joined.count(b"\n") if b"\n" in joined else messages


@dataclass(slots=True)
class OpenTransaction:
    """A transaction kept open across polls: its batches' first offsets and batches, its first poll, its records."""

    polled_at: float  # the first poll's ``perf_counter``: the interval runs from there
    firsts: dict[TopicPartition, int] = field(default_factory=dict)
    batches: list[InFlight] = field(default_factory=list)
    records: int = 0


@dataclass(slots=True)
class Ahead:
    """A poll processed (``prepared``) while the last transaction commits, not sent yet; ``firsts``: its batches'
    first offsets (of owned partitions), to read it again from."""

    batches: Sequence[tuple[TopicPartition, Sequence[Message]]]
    firsts: dict[TopicPartition, int]
    polled_at: float
    records: int
    prepared: list[Prepared] | None = None


def _earliest(a: dict[TopicPartition, int], b: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    """The earliest first offset of each partition of ``a`` and ``b``: a poll read before a rewind (dropped) has
    later offsets than the re-read, which a transaction aborted later must be read again from."""
    return {tp: min(a.get(tp, o), b.get(tp, o)) for tp, o in (b | a).items()}


def _smoothed(estimate: float, measured: float) -> float:
    """An exponentially weighted mean; the first measurement (no estimate yet: 0) is taken as is."""
    return measured if estimate == 0.0 else estimate + _SMOOTHING * (measured - estimate)


def _raise_refused(pending: Iterable[Iterable[InFlight]]) -> None:
    """Raise the error of an output the transport refused at once (a failed future: an event whose topic is denied
    or deleted, ``EventDelivery``): it never reached the producer, so the transaction would commit without it."""
    for queue in pending:
        for b in queue:
            for f in (*b.futures, *b.event_futures):
                if f.done() and not f.cancelled() and f.exception() is not None:
                    raise cast(BaseException, f.exception())


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
    #: at-least-once: the offsets of acknowledged batches, committing in the background (``BatchWorker._reap``)
    _acks_commit: asyncio.Future[None] | None
    _in_transaction: tuple[dict[TopicPartition, int], list[InFlight]]
    _reread: dict[TopicPartition, int]
    #: the transaction receiving polls' outputs, not committing yet (never with ``_committing`` pending)
    _open: OpenTransaction | None
    #: polls processed while the last transaction commits, sent in the next one
    _ahead: list[Ahead]
    #: the next poll being read meanwhile, or due to be (streams.kafka.ahead)
    _next: asyncio.Task[Any] | None
    _ahead_timer: asyncio.TimerHandle | None
    _read_s: float  # the last poll's read (streams.kafka.ahead)
    #: estimates (seconds, smoothed) of a commit and of a poll processed ahead (read and processing), and when the
    #: last commit started: the latency budget of a transaction's growth (transaction_max_latency_ms)
    _commit_s: float
    _poll_s: float
    _commit_started: float

    _rebalancing: bool
    _stop: asyncio.Event
    event_delivery: EventDelivery

    if TYPE_CHECKING:  # streams.kafka.ahead.ReadAhead's, after this mixin in the worker's bases

        def _reading(self, max_records: int, timeout_ms: int) -> asyncio.Task[Any]: ...

    def _done(self, batches: Sequence[InFlight], now: float | None = None) -> None:
        raise NotImplementedError

    async def _reap(self) -> None:
        raise NotImplementedError

    async def _call(self, fn: Callable[..., R], *args: Any, load: Sequence[Sequence[Message]] = (),
                    **kwargs: Any) -> R:  # fmt: skip
        """``fn(*args, **kwargs)``: processing a batch (pure, CPU-bound), in a thread while the event loop has
        other work: a transaction committing in the background (adding partitions and offsets, the produce
        requests and ending it are round trips that each need the loop), batches awaiting acknowledgement
        (committed as soon as acknowledged), or the next poll being read (unpacking its records: poll ahead,
        :mod:`streams.kafka.ahead`). Inline, a poll's processing held the loop for its whole duration:
        the "background" commit only progressed, and acknowledged batches were only committed, once it was over;
        the offsets of acknowledged batches committing (at-least-once, nothing awaiting acknowledgement) count as
        waiting too: inline, that commit ended only after the next poll's processing (issue 13, gate-mode p99).
        Inline when nothing waits (a thread costs more than it saves then), unless the messages it processes
        (``load``) may hold more than :data:`INLINE_MAX_RECORDS` records: the loop also sends the consumer's
        heartbeats and serves ``/metrics``. With stages (stream time) too: the observers on the loop touch their
        state only holding its lock (``streams.windows.stream.StreamTime.lock``)."""
        committing, acks_commit = self._committing, self._acks_commit
        reading = self._ahead_timer is not None or (self._next is not None and not self._next.done())
        busy = any(f is not None and not f.done() for f in (committing, acks_commit)) or reading
        if not busy and (self.settings.exactly_once or not self._pending) and records_in(load) <= INLINE_MAX_RECORDS:
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

    async def _transaction(self, batches: Sequence[tuple[TopicPartition, Sequence[Message]]], polled_at: float,
                           *, full: bool = False) -> None:  # fmt: skip
        """One poll (none: an idle poll) into the open Kafka transaction (see the module docstring); ``full``: the
        poll held all it could (a backlog), the transaction may stay open for the next one, and while the last
        one commits the next polls are processed ahead, up to ``transaction_max_records``."""
        if batches:
            firsts = {tp: ms[0].offset for tp, ms in reversed(batches) if tp in self._owned}
            ahead = Ahead(batches, firsts, polled_at, sum(len(ms) for _, ms in batches))
            self._ahead.append(ahead)
            committing = self._committing
            if committing is not None and not self._staged:
                started = time.perf_counter()
                ahead.prepared = await self._prepare(batches)  # in a thread while the last transaction commits
                self._poll_s = _smoothed(self._poll_s, self._read_s + time.perf_counter() - started)
                held = sum(a.records for a in self._ahead)
                if full and not committing.done() and held < self.settings.transaction_max_records and \
                        self._within_budget():  # fmt: skip
                    return  # poll again meanwhile: a commit's round trips cost the same for one poll or several
        elif self._open is not None:  # caught up: commit the transaction kept open for more polls
            self._end_transaction()
        if full:
            self._read_while_committing()
        if not await self._settle():  # the polls processed meanwhile are read again after it (see _settle)
            return
        polls, self._ahead = self._ahead, []
        for i, a in enumerate(polls):
            tx = self._open
            try:
                if tx is None:
                    await self.transport.begin_transaction()
                    tx = self._open = OpenTransaction(a.polled_at)
                prepared = a.prepared if a.prepared is not None else await self._prepare(a.batches)
                await self._submit_poll(prepared, a.polled_at, reap=False)
                _raise_refused(self._pending.values())
            except Exception as exc:
                self._open = None
                firsts = dict(tx.firsts) if tx is not None else {}
                for later in polls[i:]:
                    firsts = _earliest(firsts, later.firsts)
                await self._aborted(exc, firsts)
                return
            sent = [b for q in self._pending.values() for b in q]  # not a batch dropped (read before a rewind)
            tx.firsts = _earliest(tx.firsts, {b.tp: b.first for b in reversed(sent)})
            tx.batches += sent
            self._pending.clear()
            tx.records += a.records
        tx = self._open
        if tx is not None and (not full or self._staged or self._transaction_left(tx) <= 0):
            self._end_transaction()

    def _within_budget(self) -> bool:
        """True when one more poll processed ahead keeps the oldest one's expected commit within
        ``transaction_max_latency_ms``: its age, another poll's processing and a commit (the last ones measured).
        Never before a commit was measured: the first commits are a run's slowest (the producer looks up the group's
        coordinator, the broker adds the output partitions for the first time), and counted as free they let the
        second transaction grow by polls processed during the first commit (issue 13, exactly-once p99)."""
        if self._commit_s == 0.0:
            return False
        age = time.perf_counter() - self._ahead[0].polled_at
        return age + self._poll_s + self._commit_s <= self.settings.transaction_max_latency_ms / 1000

    def _read_while_committing(self) -> None:
        """Start reading the next poll while the worker waits for the last transaction's commit (a backlog): the
        event loop is idle meanwhile, and unpacking a poll (``getmany``, ~4 µs a record, synchronous on the loop)
        otherwise runs right after the next transaction's sends, delaying its commit's round trips (the loop
        handles their responses). The poll read is taken by the next cycle (:mod:`streams.kafka.ahead`: a revoke,
        a rewind, a pause or the stop meanwhile are handled as for any poll read ahead)."""
        committing = self._committing
        if committing is None or committing.done() or self._next is not None or self._rebalancing:
            return
        if self._stop.is_set() or self.event_delivery.blocked:
            return
        self._reading(self.settings.batch_max_records, self._poll_timeout_ms())

    def _transaction_left(self, tx: OpenTransaction) -> float:
        """Seconds before ``tx`` is due (0 or less: due), by ``transaction_interval_ms`` and
        ``transaction_max_records``."""
        s = self.settings
        if tx.records >= s.transaction_max_records:
            return 0.0
        return tx.polled_at + s.transaction_interval_ms / 1000 - time.perf_counter()

    def _poll_timeout_ms(self) -> int:
        """``batch_max_latency_ms``, or less while an exactly-once transaction is open: until it is due."""
        timeout = self.settings.batch_max_latency_ms
        if self._open is not None:
            timeout = max(1, min(timeout, int(self._transaction_left(self._open) * 1000)))
        return timeout

    def _end_transaction(self) -> None:
        """Send the open transaction's offsets and commit it in the background (``_settle`` awaits it)."""
        tx, self._open = self._open, None
        if tx is None:
            return
        offsets = {b.tp: b.next_offset for b in tx.batches}  # a partition's batches are in offset order
        self._commit_started = time.perf_counter()
        self._committing = asyncio.ensure_future(self._commit_transaction(offsets))
        self._in_transaction = (tx.firsts, tx.batches)

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
        """Await the transaction committing in the background, if any: True when it committed (or none was open).
        When it failed, it is aborted and read again, and so are the polls processed meanwhile, after it."""
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
            self._forget_ahead(firsts)
            return False
        self._commit_s = _smoothed(self._commit_s, committed_at - self._commit_started)
        self._done(done, committed_at)
        return True

    def _forget_ahead(self, reread: dict[TopicPartition, int] | None = None) -> None:
        """Drop the polls processed ahead (not sent): their partitions are read again from their first offsets,
        but for those in ``reread`` (read again from an earlier offset already)."""
        ahead, self._ahead = self._ahead, []
        firsts: dict[TopicPartition, int] = {}
        for a in ahead:
            firsts = _earliest(firsts, a.firsts)
        for tp, first in firsts.items():
            if tp in self._owned and tp not in (reread or {}):
                self._rewind(tp, first)

    async def _aborted(self, exc: BaseException, firsts: dict[TopicPartition, int]) -> None:
        log.error("transaction failed, aborting; its polls are read again: %r", exc)
        with contextlib.suppress(Exception):
            await self.transport.abort_transaction()
        for tp, first in firsts.items():
            if tp in self._owned:
                self._rewind(tp, first)  # the polls read since (ahead) are dropped until the re-read
        self._pending.clear()
        await asyncio.sleep(1.0)
