"""The batch hot path: one consumer and one idempotent producer (behind a transport) around the pure pipeline.

Per poll, :class:`BatchWorker` cuts ``getmany`` results into partition batches of at
most ``batch_max_records``, runs each topic's batches through its binding's pure ``process_poll``
(one decode and validation per poll and topic, outputs split per partition: :mod:`streams.kafka.polls`;
in a thread while earlier batches await acknowledgement or a transaction commits, so that the event loop
commits and sends meanwhile, else inline: ``ExactlyOnce._call``) and submits the outputs with
``create_batch``/``send_batch``, one record batch per output topic on partition
``source partition mod partitions`` (order of a source partition kept; events use
the key partitioner). Offsets are committed only after every output of a batch is
acknowledged (``acks=all``), up to ``max_inflight_batches`` batches in flight;
revoked partitions are drained and committed before release; a batch whose
processing raises is retried with backoff (only its partition paused) and then
dead-lettered as ``internal.<Exception>``; at most two polls' records await acknowledgement. After a full poll the
next one is read while it is processed (:mod:`streams.kafka.ahead`). ``exactly_once``
makes each poll one Kafka transaction. Semantics and numbers: ``docs/delivery.md``.

Kafka I/O goes through a :class:`~streams.kafka.transport.Transport` (aiokafka, or the in-memory
one of :mod:`streams.testing`); metrics, health and lifecycle events are observers
(:mod:`streams.kafka.observers`). Entry points: :mod:`streams.kafka.worker`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import deque
from collections.abc import Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from streams.errors import CommitRefusedError, SettingsError, TransportError
from streams.kafka.ahead import Read, ReadAhead
from streams.kafka.backpressure import EventDelivery
from streams.kafka.connection import backoff
from streams.kafka.observers import HealthObserver, LifecycleObserver, MetricsObserver, Observers, WorkerObserver
from streams.kafka.outputs import OutputLimits, failed, given_up
from streams.kafka.topics import output_topics
from streams.kafka.transactions import Ahead, ExactlyOnce, InFlight, OpenTransaction
from streams.kafka.transport import TopicPartition, Transport
from streams.observability import Health, Lifecycle, Metrics, log_extra
from streams.pipeline.loops import loop_reason
from streams.pipeline.records import BatchResult, Message, OutRecord
from streams.pipeline.warming import warm_all
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.pipeline.binding import Binding

__all__ = ["BatchWorker", "tune_gc"]

log = logging.getLogger("streams.kafka.worker")
_COMMIT_TIMEOUT = 10.0
_TOPIC, _PARTITION = attrgetter("topic"), attrgetter("partition")


def _same_destination(records: Sequence[OutRecord], topic: str, partition: int | None) -> bool:
    """True when every record goes to ``topic`` and ``partition``."""
    n = len(records)
    return list(map(_TOPIC, records)).count(topic) == n and list(map(_PARTITION, records)).count(partition) == n


def tune_gc() -> None:
    """Fewer collections for a batch worker: freeze what start-up built, raise the generation-0 threshold.

    The hot path allocates ~10 short-lived objects per record; with the default
    thresholds (700, 10, 10) collections cost ~10% of a gate-mode worker's time.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


class BatchWorker(ExactlyOnce, ReadAhead):
    """Consume every bound topic in one group, validate per poll and topic, produce, commit per partition after ack.

    ``transport`` defaults to :class:`~streams.kafka.aiokafka_transport.AIOKafkaTransport`;
    ``observers`` are called after the worker's own (metrics, health, lifecycle).
    """

    def __init__(
        self, settings: Settings, bindings: Sequence[Binding], *, worker_id: str,
        metrics: Metrics | None = None, health: Health | None = None, transport: Transport | None = None,
        observers: Sequence[WorkerObserver] = (),
    ) -> None:  # fmt: skip
        self.settings, self.worker_id = settings, worker_id
        self.bindings: dict[str, Binding] = {}
        for b in bindings:
            if b.topic in self.bindings:
                raise SettingsError(f"topic {b.topic!r} is bound by two schema objects; bind each topic once")
            why = loop_reason(settings, b.topic)
            if why is not None:
                raise SettingsError(f"topic {b.topic!r} is {why}: the worker would validate its own output in a "
                                    "loop; bind the source topic instead")  # fmt: skip
            self.bindings[b.topic] = b
        self.metrics = metrics or Metrics()
        self.health = health or Health(max_age=settings.health_max_age_s)
        self.lifecycle = Lifecycle(settings, worker_id, {t: b.contract for t, b in self.bindings.items()})
        self.observers = Observers([
            MetricsObserver(self.metrics, self.bindings), HealthObserver(self.health, self.bindings),
            LifecycleObserver(self.lifecycle), *observers,
        ])  # fmt: skip
        self.observers.on_health(self.health)
        self.stopped = asyncio.Event()
        #: next offset committed per partition, and recent getmany-to-commit latencies (seconds)
        self.committed: dict[TopicPartition, int] = {}
        self.commit_latencies: deque[float] = deque(maxlen=100_000)
        self._stop, self._lock = asyncio.Event(), asyncio.Lock()
        self._pending: dict[TopicPartition, deque[InFlight]] = {}
        self._owned: set[TopicPartition] = set()
        self._attempts: dict[tuple[TopicPartition, int], tuple[int, BaseException, str]] = {}
        self._uncommitted: dict[TopicPartition, int] = {}
        self._rewound: dict[TopicPartition, int] = {}  # partitions read again from an earlier batch: polls.py
        self._acks_commit: asyncio.Future[None] | None = None  # the last _reap's commit, awaited by the next
        self._poll_failures = 0  # consecutive failed polls (fetches)
        self._committing: asyncio.Future[float] | None = None  # exactly-once: see streams.kafka.transactions
        self._in_transaction: tuple[dict[TopicPartition, int], list[InFlight]] = ({}, [])
        self._reread: dict[TopicPartition, int] = {}
        self._open: OpenTransaction | None = None
        self._ahead: list[Ahead] = []
        self._commit_s, self._poll_s, self._commit_started = 0.0, 0.0, 0.0
        self._next: asyncio.Task[Read] | None = None  # the poll being read (ahead): streams.kafka.ahead
        self._rebalancing = False
        self._ahead_timer: asyncio.TimerHandle | None = None
        self._read_s, self._processing = 0.0, (0.0, 0.0)
        if transport is None:
            from streams.kafka.aiokafka_transport import AIOKafkaTransport

            transport = AIOKafkaTransport(settings, worker_id, [*self.bindings], stop=self._stop,
                                          observer=self.observers)  # fmt: skip
        self.transport: Transport = transport
        self.outputs = OutputLimits(settings, transport)
        self.event_delivery = EventDelivery(settings, transport)

    # --- lifecycle ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to finish in-flight batches, commit and stop (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> None:
        """Run until :meth:`stop`. Retries an unreachable broker forever; raises only configuration errors."""
        transport, every = self.transport, self.settings.topic_check_interval_s
        # the engine's one-off costs (plans, imports) paid while the clients connect, not by the first batch
        warming = asyncio.ensure_future(asyncio.to_thread(warm_all, list(self.bindings.values())))
        probing: asyncio.Future[None] | None = None
        try:
            if not await transport.connect(self):
                return
            await self.observers.on_start(transport)  # first: the lifecycle reports a start before any assignment
            for topic in transport.missing:
                reason = f"source topic {topic} does not exist; looking again every {every:g} s"
                log.error("%s", reason, extra=log_extra(topic))
                await self.observers.on_binding_failed(topic, reason)
            await warming
            await self.outputs.prefetch(output_topics(self.settings, transport.subscribed))
            next_check = time.monotonic() + every
            while not self._stop.is_set():
                await self._cycle()
                if probing is not None and probing.done():
                    probed, probing = probing, None
                    probed.result()  # what it raises is not the broker's (it logs those): a configuration error
                    next_check = time.monotonic() + every
                if probing is None and time.monotonic() >= next_check:
                    # beside the cycles: awaited between two, its metadata round trip (250-400 ms on a loaded
                    # broker) held every batch acknowledged meanwhile from its commit (issue 13's p99)
                    probing = asyncio.ensure_future(transport.probe(self))
        finally:
            if probing is not None:  # the stop does not wait for the broker's answer
                probing.cancel()
                await asyncio.wait([probing])
                if not probing.cancelled():
                    probing.exception()  # retrieved: a configuration error at the stop is not raised
            await self._shutdown()

    async def _shutdown(self) -> None:
        self._stop.set()
        try:
            await self._end_read()
            if self.transport.connected:
                async with self._lock:
                    await self._drain(set(self._pending))
                await self.observers.on_stopping()
        except Exception:
            log.exception("error while stopping; uncommitted batches will be re-read by the next owner")
        finally:
            await self.transport.close()
            self.observers.on_stopped()
            self.stopped.set()

    # --- the hot path ------------------------------------------------------------------------------

    async def _cycle(self) -> None:
        transport, size = self.transport, self.settings.batch_max_records
        if not transport.subscribed:
            await asyncio.sleep(self.settings.batch_max_latency_ms / 1000)
            return
        try:
            # one batch's worth per poll: under load a poll returns one partition's full batch at once, and the
            # time from a poll to its commit is one batch's processing, not one per owned partition
            polled, polled_at = await self._poll(size, self._poll_timeout_ms())
        except TransportError as exc:
            self._poll_failures += 1
            cause = exc.__cause__ or exc
            log.error("fetching %s failed (%d in a row), retrying in 1s: %r", ", ".join(transport.subscribed),
                      self._poll_failures, cause)  # fmt: skip
            self.observers.on_poll_failed(transport.subscribed, cause, self._poll_failures)
            await asyncio.sleep(1.0)
            return
        self._poll_failures = 0
        self.observers.on_poll(transport.subscribed)
        if self.event_delivery.paused:
            self._unread_paused(polled, self.event_delivery.paused)  # paused after it was read ahead
        full = sum(map(len, polled.values())) >= size
        if full and not self._stop.is_set() and not self.event_delivery.blocked:
            self._read_ahead(size, self._poll_timeout_ms())  # the next poll, read while this one is processed
        batches = [(tp, ms[i : i + size]) for tp, ms in polled.items() for i in range(0, len(ms), size)]
        if self.settings.exactly_once and (polled or self._open or self._ahead or self._committing):
            async with self._lock:  # an idle poll commits what is open and accounts for the last transaction
                await self._transaction(batches, polled_at, full=full)
        elif polled:
            async with self._lock:  # a topic's partition batches decoded and validated together: streams.kafka.polls
                await self._submit_poll(await self._prepare(batches), polled_at, reap=True)
        async with self._lock:
            await self._reap()
        await self._backpressure(wait=not polled)

    async def _poll(self, max_records: int, timeout_ms: int) -> Read:
        """The poll read ahead, else ``transport.poll``, committing the batches acknowledged meanwhile: a poll may
        take up to ``batch_max_latency_ms`` while its batch fills, and the previous batches' commits do not wait for
        it; with when the client returned it. Empty when a revoke cancelled it (``ReadAhead._revoke_read``)."""
        self._processed()
        poll = self._reading(max_records, timeout_ms)
        try:
            while not poll.done():
                if any(q and q[0].done() for q in self._pending.values()):
                    async with self._lock:
                        await self._reap()
                waiting = [f for q in self._pending.values() if q for f in (*q[0].futures, *q[0].event_futures)
                           if not f.done()]  # fmt: skip
                await asyncio.wait([poll, *waiting], return_when=asyncio.FIRST_COMPLETED)
            return ({}, time.perf_counter()) if poll.cancelled() else poll.result()
        finally:
            if self._next is poll:
                self._next = None
            if not poll.done():
                poll.cancel()

    async def _process(self, tp: TopicPartition, messages: Sequence[Message]) -> BatchResult | None:
        """The batch's outputs, fitted to their topics (pure but for the limits); None when it is retried later."""
        binding = self.bindings[tp.topic]
        first = messages[0].offset
        attempt, error, stage = self._attempts.get((tp, first), (0, None, ""))
        try:
            if error is not None and attempt > self.settings.batch_retries:
                raise error  # its outputs kept failing: give up without processing again
            result = await self._call(binding.process, messages, load=[messages], worker_id=self.worker_id)
            return await self.outputs.fit(result, messages)  # fitting is processing: a failure is retried too
        except Exception as exc:
            if attempt < self.settings.batch_retries:
                await self._retry_later(tp, first, attempt + 1, exc, "process")
                return None
            log.error("giving up after %d attempts: dead-lettering %d messages as internal.%s", attempt + 1,
                      len(messages), type(exc).__name__, extra=log_extra(tp.topic, tp.partition, first))  # fmt: skip
            self.observers.on_batch_given_up(tp, first, exc)
            result = given_up(binding.contract.ref, messages, exc, self.settings, worker_id=self.worker_id,
                              refused=stage == "produce")  # fmt: skip
        return await self.outputs.fit_given_up(result, messages)

    async def _submit(self, tp: TopicPartition, messages: Sequence[Message], result: BatchResult, polled_at: float,
                      shared: InFlight | None = None) -> InFlight:  # fmt: skip
        """Send a processed batch's outputs and events; it awaits acknowledgement in ``_pending``.

        ``shared``: a batch of the same poll whose events describe this one too (sent once, awaited by both)."""
        first, next_offset = messages[0].offset, messages[-1].offset + 1
        attempt = self._attempts.get((tp, first), (0, None, ""))[0]
        futures = await self._send(tp, result)
        if shared is None:
            events, event_futures = result.events, await self.event_delivery.send(result.events)
        else:  # the very lists: a re-send of a failed event (EventDelivery.settle) is seen by both batches
            events, event_futures = shared.events, shared.event_futures
        batch = InFlight(tp, first, next_offset, futures, polled_at, attempt, events, event_futures)
        self._pending.setdefault(tp, deque()).append(batch)
        highwater = self.transport.highwater(tp)
        lag = highwater - next_offset if highwater is not None else None
        self.observers.on_batch_end(tp, self.bindings[tp.topic], len(messages), result, lag)
        return batch

    async def _retry_later(self, tp: TopicPartition, first: int, attempt: int, exc: BaseException, stage: str) -> None:
        """Re-read the batch from ``first`` after a backoff, pausing only this partition."""
        self._attempts[(tp, first)] = (attempt, exc, stage)
        delay = backoff(self.settings, max(attempt, 1))
        log.error("%s failed (attempt %d of %d), retrying the batch in %.1fs: %r", stage, attempt,
                  self.settings.batch_retries + 1, delay, exc, extra=log_extra(tp.topic, tp.partition, first),
                  exc_info=stage == "process")  # fmt: skip
        await self.observers.on_batch_error(tp, first, stage, exc)
        self._rewind(tp, first)
        self.transport.pause(tp)
        asyncio.get_running_loop().call_later(delay, self._resume, tp)

    def _resume(self, tp: TopicPartition) -> None:
        if self.transport.connected and tp in self._owned and tp not in self.event_delivery.paused:
            self.transport.resume(tp)

    async def _send(self, tp: TopicPartition, result: BatchResult) -> list[asyncio.Future[Any]]:
        """Submit every output of a batch: one record batch per output topic and partition, events one by one."""
        transport = self.transport
        futures: list[asyncio.Future[Any]] = []
        groups: dict[tuple[str, int | None], list[OutRecord]] = {}
        for records in (result.validated, result.quarantined, result.dead_lettered):
            if not records:
                continue
            first = records[0]
            if _same_destination(records, first.topic, first.partition):  # the common case, without a loop
                groups.setdefault((first.topic, first.partition), []).extend(records)
                continue
            for r in records:
                groups.setdefault((r.topic, r.partition), []).append(r)
        for (topic, explicit), records in groups.items():
            try:
                part = tp.partition % await transport.partition_count(topic) if explicit is None else explicit
            except Exception as exc:  # no metadata (aiokafka raises: topic denied, or deleted): a failed output
                futures.append(failed(exc))
                continue
            futures += await transport.send_batch(topic, part, records)
        return futures

    # --- acknowledgements and commits ----------------------------------------------------------------

    async def _backpressure(self, *, wait: bool) -> None:
        """Wait for the oldest acknowledgements when idle, or past ``max_inflight_batches`` batches or two polls'
        records in flight: reading further ahead only queues batches behind the producer (latency, no rate)."""
        inflight = sum(len(q) for q in self._pending.values())
        records = sum(b.next_offset - b.first for q in self._pending.values() for b in q)
        if inflight == 0 or (not wait and inflight <= self.settings.max_inflight_batches
                             and records <= 2 * self.settings.batch_max_records):  # fmt: skip
            return
        oldest = [f for q in self._pending.values() for f in (*q[0].futures, *q[0].event_futures) if not f.done()]
        if oldest:
            await asyncio.wait(oldest, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
        async with self._lock:
            await self._reap()

    async def _reap(self) -> None:
        """Commit the offsets of every leading batch whose outputs are all acknowledged, in the background: the next
        call with more to commit (and ``_drain``) awaits that commit first, the worker sends and processes meanwhile."""
        commit = self._acks_commit
        if commit is not None and not commit.done() and not any(q and q[0].done() for q in self._pending.values()):
            return  # nothing more acknowledged yet: the commit goes on in the background
        await self._acks_committed()
        offsets: dict[TopicPartition, int] = dict(self._uncommitted)
        done: list[InFlight] = []
        for tp, queue in list(self._pending.items()):
            while queue and queue[0].done():
                batch = queue[0]
                error = batch.error()
                if error is None and not await self.event_delivery.settle(batch.events, batch.event_futures,
                                                                          self._owned):  # fmt: skip
                    break  # its events are re-sent alone (consumption paused): the records are not sent again
                queue.popleft()
                if error is not None:  # re-read from this batch; later ones of the partition are redone too
                    queue.clear()
                    if tp in self._owned:
                        attempt = batch.attempt
                        self.outputs.refused(error)
                        if self.transport.unreachable(error):
                            log.error("broker %s unreachable: outputs of a batch were not acknowledged (%r)",
                                      self.settings.bootstrap_servers, error)  # fmt: skip
                        else:  # after batch_retries, the next read dead-letters the batch as internal.<error>
                            attempt += 1
                        await self._retry_later(tp, batch.first, attempt, error, "produce")
                    break
                offsets[tp] = batch.next_offset
                done.append(batch)
                self._attempts.pop((tp, batch.first), None)
            if not queue:
                self._pending.pop(tp, None)
        if offsets:
            self._acks_commit = asyncio.ensure_future(self._commit_acknowledged(offsets, done))

    async def _commit_acknowledged(self, offsets: dict[TopicPartition, int], done: list[InFlight]) -> None:
        if await self._commit(offsets):
            self._done(done)

    async def _acks_committed(self) -> None:
        """Await the commit the last ``_reap`` started, if any (it never raises: a failed commit is retried)."""
        commit, self._acks_commit = self._acks_commit, None
        if commit is not None:
            await commit

    def _done(self, batches: Sequence[InFlight], now: float | None = None) -> None:
        """Account for batches whose offsets were committed (at ``now``, default: now)."""
        now = time.perf_counter() if now is None else now
        for b in batches:
            self.commit_latencies.append(now - b.polled_at)
            self.committed[b.tp] = max(self.committed.get(b.tp, 0), b.next_offset)
            self.observers.on_commit(b.tp, b.next_offset, now - b.polled_at)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> bool:
        """Commit ``offsets`` of owned partitions; on failure keep them for the next commit."""
        self._uncommitted = mine = {tp: o for tp, o in offsets.items() if tp in self._owned}
        if not mine:
            return True
        try:
            await asyncio.wait_for(self.transport.commit(mine), _COMMIT_TIMEOUT)
        except CommitRefusedError as exc:
            log.warning("commit refused during a rebalance (retried before release): %s", exc.__cause__ or exc)
            return False
        except (TimeoutError, TransportError) as exc:
            log.error("broker %s unreachable, retrying in %.1fs (commit failed: %r)",
                      self.settings.bootstrap_servers, self.settings.batch_max_latency_ms / 1000,
                      exc.__cause__ or exc)  # fmt: skip
            self.observers.on_commit_failed(next(iter(mine)).topic, exc)
            return False
        self._uncommitted = {}
        return True

    async def _drain(self, tps: set[TopicPartition]) -> None:
        """Await every in-flight batch of ``tps`` (and an exactly-once commit, the open transaction committed first)
        and commit what was acknowledged."""
        self._forget_ahead()
        self._end_transaction()
        await self._settle()
        futures = [f for tp in tps for b in self._pending.get(tp, ()) for f in (*b.futures, *b.event_futures)]
        if futures:
            await asyncio.wait(futures, timeout=30.0)
        await self._reap()
        await self._acks_committed()

    # --- rebalances (the transport's assignment callbacks) ---------------------------------------------

    async def partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._revoke_read(set(revoked))  # the poll being read holds records of the old assignment
        async with self._lock:  # no batch is half-submitted; an exactly-once transaction is complete (_drain)
            await self._drain(set(revoked) & set(self._pending))
            self._owned -= set(revoked)
            self._uncommitted = {tp: o for tp, o in self._uncommitted.items() if tp in self._owned}
            for tp in revoked:
                self._pending.pop(tp, None)
                self._rewound.pop(tp, None)  # read again from the committed offset by its next owner
        if revoked:
            await self.observers.on_revoke(set(revoked))

    async def partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # under the lock: batches of the new partitions (the client may fetch them already) wait until every
        # observer has taken the assignment (e.g. restored the partitions' stream-time state)
        async with self._lock:
            self._owned |= set(assigned)
            self._attempts = {k: v for k, v in self._attempts.items() if k[0] in self._owned}  # kept if still ours
            await self.observers.on_assign(set(assigned))
            self._rebalancing = False
