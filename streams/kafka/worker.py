"""The batch hot path: one aiokafka consumer and one idempotent producer around the pure pipeline.

Per poll, :class:`BatchWorker` cuts ``getmany`` results into partition batches of at
most ``batch_max_records``, runs each through its binding's pure ``process`` (inline:
a thread executor measured slower on 2 cores) and submits the outputs with
``create_batch``/``send_batch``, one record batch per output topic on partition
``source partition mod partitions`` (order of a source partition kept; events use
the key partitioner). Offsets are committed only after every output of a batch is
acknowledged (``acks=all``), up to ``max_inflight_batches`` batches in flight;
revoked partitions are drained and committed before release; a batch whose
processing raises is retried with backoff (only its partition paused) and then
dead-lettered as ``internal.<Exception>``. ``exactly_once`` makes each poll one
Kafka transaction. Semantics and numbers: ``docs/delivery.md``.

Run one worker with settings from the environment: ``python -m streams.kafka.worker``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError, KafkaTimeoutError
from aiokafka.structs import OffsetAndMetadata

from streams.errors import SettingsError
from streams.kafka.admin import KafkaSession, backoff, default_worker_id
from streams.kafka.headers import HeaderNames, appended
from streams.kafka.records import BatchResult, Message, OutRecord
from streams.observability import Health, Lifecycle, Metrics, log_extra
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.kafka.pipeline import Binding

__all__ = ["BatchWorker", "default_worker_id", "internal_dead_letters", "main", "run_worker", "tune_gc"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_COMMIT_TIMEOUT = 10.0


def to_messages(records: Sequence[Any]) -> list[Message]:
    """aiokafka ``ConsumerRecord`` objects as pipeline :class:`Message` values."""
    msg = Message
    return [
        msg(r.topic, r.partition, r.offset, r.value, r.key, r.headers if type(r.headers) is tuple else tuple(r.headers),
            r.timestamp)
        for r in records
    ]  # fmt: skip


def tune_gc() -> None:
    """Fewer collections for a batch worker: freeze what start-up built, raise the generation-0 threshold.

    The hot path allocates ~10 short-lived objects per record; with the default
    thresholds (700, 10, 10) collections cost ~10% of a gate-mode worker's time.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def internal_dead_letters(
    binding: Binding, messages: Sequence[Message], error: BaseException, settings: Settings
) -> BatchResult:
    """A batch given up after retries: every message to ``<topic>.dlq`` with class ``internal.<Exception>``."""
    names = HeaderNames(settings.header_prefix)
    cls, ref = f"internal.{type(error).__name__}", binding.contract.ref
    text = f"Processing this batch raised {type(error).__name__} on every retry; see the worker log."
    out = [
        OutRecord(
            settings.output_topic(m.topic, "dlq"), m.value, m.key,
            appended(m.headers, names.error_headers(topic=m.topic, partition=m.partition, offset=m.offset,
                                                    contract_ref=ref, stage="internal", error_class=cls, message=text)),
            m.timestamp_ms,
        )
        for m in messages
    ]  # fmt: skip
    last = {m.partition: m.offset for m in messages}
    return BatchResult(dead_lettered=out, counts={"dead_lettered": len(out)}, last_offsets=last)


def _broker_away(error: BaseException) -> bool:
    """Errors that mean "the broker is unreachable or busy", retried without limit."""
    return isinstance(error, KafkaTimeoutError | TimeoutError | OSError) or bool(getattr(error, "retriable", False))


@dataclass(slots=True)
class _InFlight:
    """One processed batch whose outputs await acknowledgement before its offsets can be committed."""

    tp: TopicPartition
    first: int
    next_offset: int
    futures: list[asyncio.Future[Any]]
    polled_at: float

    def done(self) -> bool:
        return all(f.done() for f in self.futures)

    def error(self) -> BaseException | None:
        return next((f.exception() for f in self.futures if not f.cancelled() and f.exception() is not None), None)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: BatchWorker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.worker.partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.worker.partitions_assigned(assigned)


class BatchWorker:
    """Consume every bound topic in one group, validate per partition batch, produce, commit after ack."""

    def __init__(
        self, settings: Settings, bindings: Sequence[Binding], *, worker_id: str,
        metrics: Metrics | None = None, health: Health | None = None,
    ) -> None:  # fmt: skip
        self.settings, self.worker_id = settings, worker_id
        self.bindings: dict[str, Binding] = {}
        for b in bindings:
            if b.topic in self.bindings:
                raise SettingsError(f"topic {b.topic!r} is bound by two schema objects; bind each topic once")
            self.bindings[b.topic] = b
        self.metrics = metrics or Metrics()
        self.health = health or Health(max_age=settings.health_max_age_s)
        self.health.register(self.bindings)
        for b in bindings:
            self.metrics.bind(b.contract.id, b.contract.version, b.contract.sha256, b.topic)
        self._severity = {b.topic: {r.name: str(r.severity) for r in b.schema.rules} for b in bindings}
        self.stopped = asyncio.Event()
        #: next offset committed per partition, and recent getmany-to-commit latencies (seconds)
        self.committed: dict[TopicPartition, int] = {}
        self.commit_latencies: deque[float] = deque(maxlen=100_000)
        self._stop, self._lock = asyncio.Event(), asyncio.Lock()
        self._pending: dict[TopicPartition, deque[_InFlight]] = {}
        self._owned: set[TopicPartition] = set()
        self._attempts: dict[tuple[TopicPartition, int], tuple[int, BaseException]] = {}
        self._uncommitted: dict[TopicPartition, OffsetAndMetadata] = {}
        self.session = KafkaSession(settings, worker_id, [*self.bindings], stop=self._stop, health=self.health,
                                    metrics=self.metrics)  # fmt: skip
        self.lifecycle = Lifecycle(settings, worker_id, {t: b.contract for t, b in self.bindings.items()})

    # --- lifecycle ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to finish in-flight batches, commit and stop (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> None:
        """Run until :meth:`stop`. Retries an unreachable broker forever; raises only configuration errors."""
        session, listener, every = self.session, _Listener(self), self.settings.topic_check_interval_s
        try:
            if not await session.connect(listener):
                return
            assert session.events is not None
            self.lifecycle.send = session.events.send
            await self.lifecycle.emit("started")
            for topic in session.missing:
                reason = f"source topic {topic} does not exist; looking again every {every:g} s"
                log.error("%s", reason, extra=log_extra(topic))
                await self.lifecycle.emit("binding_failed", topics=[topic], reason=reason)
            next_check = time.monotonic() + every
            while not self._stop.is_set():
                await self._cycle()
                if time.monotonic() >= next_check:
                    await session.probe(listener)
                    next_check = time.monotonic() + every
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        self._stop.set()
        try:
            if self.session.consumer is not None and self.session.producer is not None:
                async with self._lock:
                    await self._drain(set(self._pending))
                await self.lifecycle.emit("stopped", reason="stop requested", wait=True)
        except Exception:
            log.exception("error while stopping; uncommitted batches will be re-read by the next owner")
        finally:
            await self.session.close()
            for topic in self.bindings:
                self.metrics.binding_up.labels(topic).set(0)
                self.health.fail(topic, "worker stopped")
            self.stopped.set()

    # --- the hot path ------------------------------------------------------------------------------

    async def _cycle(self) -> None:
        consumer, size = self.session.consumer, self.settings.batch_max_records
        assert consumer is not None
        if not self.session.subscribed:
            await asyncio.sleep(self.settings.batch_max_latency_ms / 1000)
            return
        try:
            polled = await consumer.getmany(
                max_records=size * max(len(self._owned), 1), timeout_ms=self.settings.batch_max_latency_ms
            )
        except KafkaError as exc:
            log.error("poll failed, retrying in 1s: %r", exc)
            await asyncio.sleep(1.0)
            return
        polled_at = time.perf_counter()
        self.health.polled(self.session.subscribed)
        if polled:
            async with self._lock:
                batches = [(tp, rs[i : i + size]) for tp, rs in polled.items() for i in range(0, len(rs), size)]
                if self.settings.exactly_once:
                    await self._transaction(batches, polled_at)
                else:
                    for tp, records in batches:
                        if tp in self._owned:
                            await self._handle(tp, records, polled_at)
                            await asyncio.sleep(0)  # let the client send fetch and produce requests meanwhile
                            await self._reap()  # commit what is acknowledged already
        async with self._lock:
            await self._reap()
        await self._backpressure(wait=not polled)

    async def _handle(self, tp: TopicPartition, records: Sequence[Any], polled_at: float) -> None:
        """Process one partition batch and submit its outputs (not awaiting the acknowledgements)."""
        binding, messages = self.bindings[tp.topic], to_messages(records)
        first, next_offset = messages[0].offset, messages[-1].offset + 1
        attempt, error = self._attempts.get((tp, first), (0, None))
        try:
            if error is not None and attempt > self.settings.batch_retries:
                raise error  # its outputs kept failing: give up without processing again
            result = binding.process(messages, worker_id=self.worker_id)
        except Exception as exc:
            if attempt < self.settings.batch_retries:
                await self._retry_later(tp, first, attempt + 1, exc, "process")
                return
            log.error("giving up after %d attempts: dead-lettering %d messages as internal.%s", attempt + 1,
                      len(messages), type(exc).__name__, extra=log_extra(tp.topic, tp.partition, first))  # fmt: skip
            self.metrics.dead_lettered_batches.labels(tp.topic).inc()
            result = internal_dead_letters(binding, messages, exc, self.settings)
        self._attempts.pop((tp, first), None)
        self.health.ok(tp.topic)
        self.metrics.binding_up.labels(tp.topic).set(1)
        futures = await self._send(tp, result)
        self._pending.setdefault(tp, deque()).append(_InFlight(tp, first, next_offset, futures, polled_at))
        self.metrics.observe_batch(
            contract_id=binding.contract.id, topic=tp.topic, messages=len(messages), counts=result.counts,
            rule_failures=result.rule_failures, severities=self._severity[tp.topic],
            decode_seconds=result.decode_seconds, validate_seconds=result.validate_seconds,
        )  # fmt: skip
        highwater = self.session.consumer.highwater(tp) if self.session.consumer is not None else None
        if highwater is not None:
            self.metrics.set_lag(tp.topic, tp.partition, highwater - next_offset)

    async def _retry_later(self, tp: TopicPartition, first: int, attempt: int, exc: BaseException, stage: str) -> None:
        """Re-read the batch from ``first`` after a backoff, pausing only this partition."""
        assert self.session.consumer is not None
        self._attempts[(tp, first)] = (attempt, exc)
        delay = backoff(self.settings, max(attempt, 1))
        log.error("%s failed (attempt %d of %d), retrying the batch in %.1fs: %r", stage, attempt,
                  self.settings.batch_retries + 1, delay, exc, extra=log_extra(tp.topic, tp.partition, first),
                  exc_info=stage == "process")  # fmt: skip
        self.metrics.batch_failures.labels(tp.topic, stage).inc()
        self.metrics.binding_up.labels(tp.topic).set(0)
        self.health.fail(tp.topic, f"{stage} failed at partition {tp.partition} offset {first}: {type(exc).__name__}")
        reason = f"{stage} of {tp.topic}[{tp.partition}] from offset {first} failed: {type(exc).__name__}: {exc}"
        await self.lifecycle.emit("binding_failed", topics=[tp.topic], reason=reason[:500])
        self.session.consumer.seek(tp, first)
        self.session.consumer.pause(tp)
        asyncio.get_running_loop().call_later(delay, self._resume, tp)

    def _resume(self, tp: TopicPartition) -> None:
        if self.session.consumer is not None and tp in self._owned:
            self.session.consumer.resume(tp)

    async def _send(self, tp: TopicPartition, result: BatchResult) -> list[asyncio.Future[Any]]:
        """Submit every output of a batch: one record batch per output topic and partition, events one by one."""
        producer = self.session.producer
        assert producer is not None
        futures: list[asyncio.Future[Any]] = []
        groups: dict[tuple[str, int | None], list[OutRecord]] = {}
        for r in (*result.validated, *result.quarantined, *result.dead_lettered):
            groups.setdefault((r.topic, r.partition), []).append(r)
        for (topic, explicit), records in groups.items():
            part = tp.partition % await self.session.partition_count(topic) if explicit is None else explicit
            batch = producer.create_batch()
            for r in records:
                if batch.append(key=r.key, value=r.value, timestamp=r.timestamp_ms, headers=list(r.headers)) is None:
                    futures.append(await producer.send_batch(batch, topic, partition=part))
                    batch = producer.create_batch()  # a record always fits an empty batch
                    batch.append(key=r.key, value=r.value, timestamp=r.timestamp_ms, headers=list(r.headers))
            futures.append(await producer.send_batch(batch, topic, partition=part))
        for e in result.events:
            futures.append(await producer.send(e.topic, e.value, e.key, e.partition, headers=list(e.headers)))
        return futures

    async def _transaction(self, batches: list[tuple[TopicPartition, Sequence[Any]]], polled_at: float) -> None:
        """Exactly-once: the outputs of one poll and its offsets in one Kafka transaction."""
        producer, consumer = self.session.producer, self.session.consumer
        assert producer is not None and consumer is not None
        firsts = {tp: rs[0].offset for tp, rs in reversed(batches) if tp in self._owned}
        try:
            await producer.begin_transaction()
            for tp, records in batches:
                if tp in self._owned:
                    await self._handle(tp, records, polled_at)
            offsets = {b.tp: b.next_offset for q in self._pending.values() for b in q}
            if offsets:
                await producer.send_offsets_to_transaction(offsets, self.settings.app_id)
            await producer.commit_transaction()
        except Exception as exc:
            log.error("transaction failed, aborting; the poll is read again: %r", exc)
            with contextlib.suppress(Exception):
                await producer.abort_transaction()
            for tp, first in firsts.items():
                if tp in self._owned:
                    consumer.seek(tp, first)
            self._pending.clear()
            await asyncio.sleep(1.0)
            return
        self._done([b for q in self._pending.values() for b in q])
        self._pending.clear()

    # --- acknowledgements and commits ----------------------------------------------------------------

    async def _backpressure(self, *, wait: bool) -> None:
        """Wait for the oldest acknowledgements when too many batches are in flight (or when idle)."""
        inflight = sum(len(q) for q in self._pending.values())
        if inflight == 0 or (not wait and inflight <= self.settings.max_inflight_batches):
            return
        oldest = [f for q in self._pending.values() for f in q[0].futures if not f.done()]
        if oldest:
            await asyncio.wait(oldest, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
        async with self._lock:
            await self._reap()

    async def _reap(self) -> None:
        """Commit the offsets of every leading batch whose outputs are all acknowledged."""
        offsets: dict[TopicPartition, OffsetAndMetadata] = dict(self._uncommitted)
        done: list[_InFlight] = []
        for tp, queue in list(self._pending.items()):
            while queue and queue[0].done():
                batch = queue.popleft()
                error = batch.error()
                if error is not None:  # re-read from this batch; later ones of the partition are redone too
                    queue.clear()
                    if tp in self._owned:
                        attempt = self._attempts.get((tp, batch.first), (0, None))[0]
                        if _broker_away(error):
                            log.error("broker %s unreachable: outputs of a batch were not acknowledged (%r)",
                                      self.settings.bootstrap_servers, error)  # fmt: skip
                        else:  # after batch_retries, the next read dead-letters the batch as internal.<error>
                            attempt += 1
                        await self._retry_later(tp, batch.first, attempt, error, "produce")
                    break
                offsets[tp] = OffsetAndMetadata(batch.next_offset, "")
                done.append(batch)
            if not queue:
                self._pending.pop(tp, None)
        if offsets and await self._commit(offsets):
            self._done(done)

    def _done(self, batches: Sequence[_InFlight]) -> None:
        """Account for batches whose offsets were committed."""
        now = time.perf_counter()
        for b in batches:
            self.commit_latencies.append(now - b.polled_at)
            self.metrics.commit_latency.labels(b.tp.topic).observe(now - b.polled_at)
            self.committed[b.tp] = max(self.committed.get(b.tp, 0), b.next_offset)

    async def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> bool:
        """Commit ``offsets`` of owned partitions; on failure keep them for the next commit."""
        assert self.session.consumer is not None
        self._uncommitted = mine = {tp: o for tp, o in offsets.items() if tp in self._owned}
        if not mine:
            return True
        try:
            await asyncio.wait_for(self.session.consumer.commit(mine), _COMMIT_TIMEOUT)
        except CommitFailedError as exc:
            log.warning("commit refused during a rebalance (retried before release): %s", exc)
            return False
        except (TimeoutError, KafkaError) as exc:
            log.error("broker %s unreachable, retrying in %.1fs (commit failed: %r)",
                      self.settings.bootstrap_servers, self.settings.batch_max_latency_ms / 1000, exc)  # fmt: skip
            self.metrics.batch_failures.labels(next(iter(mine)).topic, "commit").inc()
            return False
        self._uncommitted = {}
        return True

    async def _drain(self, tps: set[TopicPartition]) -> None:
        """Await every in-flight batch of ``tps`` and commit what was acknowledged."""
        futures = [f for tp in tps for b in self._pending.get(tp, ()) for f in b.futures]
        if futures:
            await asyncio.wait(futures, timeout=30.0)
        await self._reap()

    # --- rebalances and events -----------------------------------------------------------------------

    async def partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._lock:  # no batch is half-submitted; an exactly-once transaction is complete
            await self._drain(set(revoked) & set(self._pending))
            self._owned -= set(revoked)
            self._uncommitted = {tp: o for tp, o in self._uncommitted.items() if tp in self._owned}
            for tp in revoked:
                self._pending.pop(tp, None)
                self.metrics.forget_partition(tp.topic, tp.partition)
        if revoked:
            await self.lifecycle.emit("partitions_revoked", partitions=[(tp.topic, tp.partition) for tp in revoked])

    async def partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.lifecycle.generation += 1
        self._owned |= set(assigned)
        self._attempts = {k: v for k, v in self._attempts.items() if k[0] in self._owned}  # kept if still ours
        await self.lifecycle.emit("partitions_assigned", partitions=[(tp.topic, tp.partition) for tp in assigned])


def run_worker(settings: Settings) -> int:
    """Run a worker until SIGINT/SIGTERM: :func:`streams.kafka.app.run_worker` (the CLI's entry point)."""
    from streams.kafka import app

    return app.run_worker(settings)


def main() -> int:
    """``python -m streams.kafka.worker``: settings from the environment; exit 2 on configuration errors."""
    from streams.kafka import app

    return app.main()


if __name__ == "__main__":
    raise SystemExit(main())
