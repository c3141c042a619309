"""The batch hot path: one aiokafka consumer and one idempotent producer around the pure pipeline.

Per poll, :class:`BatchWorker` takes up to ``batch_max_records`` messages per
partition from ``getmany``, hands each partition's batch to its binding's pure
``process`` (in a worker thread, so fetch and produce I/O overlap the CPU work),
and writes every output of the batch with ``create_batch``/``send_batch``: one
record batch per output topic, on partition ``source partition mod partitions``
(the order of a source partition is kept; events go through the key partitioner).

**Delivery: at-least-once, commit after acknowledgement.** A batch's offsets are
committed only once every record it produced (validated, quarantine, DLQ, events)
is acknowledged by the broker (``acks=all``, idempotent producer); up to
``max_inflight_batches`` batches are in flight while later ones are processed.
On revoke, in-flight batches of the revoked partitions are awaited and committed
before the partitions are released. A batch whose processing raises is retried
(seek back, pause, exponential backoff) ``batch_retries`` times, then its messages
are dead-lettered as ``internal.<Exception>`` so the partition moves on; other
bindings keep running. With ``exactly_once`` every poll is one Kafka transaction
(outputs plus ``send_offsets_to_transaction``), not pipelined.

Run one worker with settings from the environment: ``python -m streams.kafka.worker``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from streams.errors import BrokerError, SettingsError
from streams.events.builders import lifecycle
from streams.events.codec import to_kafka
from streams.kafka.admin import client_config, ensure_topics, output_topics
from streams.kafka.headers import HeaderNames, appended
from streams.kafka.records import BatchResult, Message, OutRecord
from streams.observability import Health, Metrics, log_extra
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.contracts.model import Contract, SchemaObject

__all__ = ["BatchWorker", "Binding", "default_worker_id", "internal_dead_letters", "main", "run_worker"]

log = logging.getLogger(__name__)
_MAX_BACKOFF = 30.0
_COMMIT_TIMEOUT = 10.0


class Binding(Protocol):
    """What the worker needs of :class:`streams.kafka.pipeline.Binding`."""

    @property
    def topic(self) -> str: ...
    @property
    def contract(self) -> Contract: ...
    @property
    def schema(self) -> SchemaObject: ...
    def process(self, messages: Sequence[Message], *, worker_id: str) -> BatchResult: ...


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def backoff(settings: Settings, attempt: int) -> float:
    """Seconds before retry ``attempt`` (1-based): ``retry_backoff_ms`` doubled per attempt, at most 30 s."""
    return float(min(settings.retry_backoff_ms / 1000 * 2 ** max(attempt - 1, 0), _MAX_BACKOFF))


def to_messages(records: Sequence[Any]) -> list[Message]:
    """aiokafka ``ConsumerRecord`` objects as pipeline :class:`Message` values."""
    return [Message(r.topic, r.partition, r.offset, r.value, r.key, tuple(r.headers), r.timestamp) for r in records]


def internal_dead_letters(
    binding: Binding, messages: Sequence[Message], error: BaseException, settings: Settings
) -> BatchResult:
    """The batch given up after retries: every message to ``<topic>.dlq`` with class ``internal.<Exception>``."""
    names = HeaderNames(settings.header_prefix)
    cls = f"internal.{type(error).__name__}"
    text = f"Processing this batch raised {type(error).__name__} on every retry; see the worker log."
    out = [
        OutRecord(
            settings.output_topic(m.topic, "dlq"), m.value, m.key,
            appended(m.headers, names.error_headers(
                topic=m.topic, partition=m.partition, offset=m.offset, contract_ref=binding.contract.ref,
                stage="internal", error_class=cls, message=text,
            )),
            m.timestamp_ms,
        )
        for m in messages
    ]  # fmt: skip
    last = {m.partition: m.offset for m in messages}
    return BatchResult(dead_lettered=out, counts={"dead_lettered": len(out)}, last_offsets=last)


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
        for f in self.futures:
            if f.done() and not f.cancelled() and f.exception() is not None:
                return f.exception()
        return None


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
        self,
        settings: Settings,
        bindings: Sequence[Binding],
        *,
        worker_id: str,
        metrics: Metrics | None = None,
        health: Health | None = None,
    ) -> None:
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
        self._stop = asyncio.Event()
        self.stopped = asyncio.Event()
        self._lock = asyncio.Lock()
        self._pending: dict[TopicPartition, deque[_InFlight]] = {}
        self._owned: set[TopicPartition] = set()
        self._attempts: dict[tuple[TopicPartition, int], tuple[int, BaseException]] = {}
        self._uncommitted: dict[TopicPartition, OffsetAndMetadata] = {}
        #: next offset committed per partition, and recent getmany-to-commit latencies (seconds)
        self.committed: dict[TopicPartition, int] = {}
        self.commit_latencies: deque[float] = deque(maxlen=100_000)
        self._subscribed: tuple[str, ...] = ()
        self._partitions: dict[str, int] = {}
        self._generation = 0
        self._unreachable = False
        self._started_at = datetime.now(UTC)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="qstreams-process")
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to finish in-flight batches, commit and stop (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> None:
        """Run until :meth:`stop`. Retries an unreachable broker forever; raises only configuration errors."""
        try:
            await self._connect()
            await self._lifecycle("started")
            next_check = time.monotonic() + self.settings.topic_check_interval_s
            while not self._stop.is_set():
                await self._cycle()
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + self.settings.topic_check_interval_s
                    await self._check_topics()
        finally:
            await self._shutdown()

    async def _retrying(self, what: str, call: Any) -> Any:
        attempt = 0
        while True:
            try:
                return await call()
            except SettingsError:
                raise
            except (BrokerError, KafkaError, OSError) as exc:
                attempt += 1
                delay = backoff(self.settings, attempt)
                log.error("broker %s unreachable, retrying in %.1fs (%s: %s)", self.settings.bootstrap_servers,
                          delay, what, exc)  # fmt: skip
                for topic in self.bindings:
                    self.health.fail(topic, "broker unreachable")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                if self._stop.is_set():
                    raise asyncio.CancelledError from exc

    async def _connect(self) -> None:
        s = self.settings
        state = await self._retrying(
            "creating topics", lambda: asyncio.to_thread(ensure_topics, s, list(self.bindings))
        )
        for topic in state.sources_missing:
            await self._missing(topic)
        security = client_config(s, "aiokafka")
        producer_args: dict[str, Any] = {
            "client_id": f"{s.app_id}-{self.worker_id}", "acks": "all", "enable_idempotence": True,
            "linger_ms": s.linger_ms, "max_batch_size": s.producer_batch_bytes, "max_request_size": 4 * 1_048_576,
        }  # fmt: skip
        if s.exactly_once:
            producer_args["transactional_id"] = f"{s.app_id}-{self.worker_id}"
        self._producer = AIOKafkaProducer(**producer_args, **security)
        await self._retrying("starting the producer", self._producer.start)
        self._consumer = AIOKafkaConsumer(
            client_id=f"{s.app_id}-{self.worker_id}", group_id=s.app_id, enable_auto_commit=False,
            auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1_048_576, fetch_max_bytes=64 * 1_048_576,
            isolation_level="read_committed", **security,
        )  # fmt: skip
        await self._retrying("starting the consumer", self._consumer.start)
        for topic in output_topics(s, state.sources_present):
            await self._partition_count(topic)
        self._subscribe(state.sources_present)

    def _subscribe(self, topics: Sequence[str]) -> None:
        assert self._consumer is not None
        wanted = tuple(sorted(topics))
        if wanted and wanted != self._subscribed:
            self._consumer.subscribe(list(wanted), listener=_Listener(self))
        self._subscribed = wanted
        for topic in self._subscribed:
            self.health.ok(topic)
            self.metrics.binding_up.labels(topic).set(1)
        self.health.polled(self._subscribed)

    async def _missing(self, topic: str) -> None:
        reason = f"source topic {topic} does not exist; looking again every {self.settings.topic_check_interval_s:g} s"
        log.error("%s", reason, extra=log_extra(topic))
        self.health.fail(topic, "source topic missing")
        await self._lifecycle("binding_failed", contracts=[self.bindings[topic].contract], reason=reason)

    async def _check_topics(self) -> None:
        """Probe the broker and look again for missing source topics, every ``topic_check_interval_s``."""
        assert self._consumer is not None
        every = self.settings.topic_check_interval_s
        try:
            cluster_topics = await asyncio.wait_for(self._consumer.topics(), max(every, 5.0))
        except (TimeoutError, KafkaError, OSError) as exc:
            log.error("broker %s unreachable, retrying in %.0fs (%r)", self.settings.bootstrap_servers, every, exc)
            self._unreachable = True
            for topic in self.bindings:
                self.health.fail(topic, "broker unreachable")
                self.metrics.binding_up.labels(topic).set(0)
            return
        if self._unreachable:
            log.warning("broker %s reachable again", self.settings.bootstrap_servers)
            self._unreachable = False
            self._subscribe(self._subscribed)
        missing = [t for t in self.bindings if t not in self._subscribed]
        if not any(t in cluster_topics for t in missing):
            return
        try:
            state = await asyncio.to_thread(ensure_topics, self.settings, list(self.bindings))
        except BrokerError as exc:
            log.error("broker %s unreachable, retrying in %.0fs (%s)", self.settings.bootstrap_servers, every, exc)
            return
        log.info("source topics now present: %s", ", ".join(sorted(set(state.sources_present) - set(self._subscribed))))
        self._subscribe(state.sources_present)

    async def _shutdown(self) -> None:
        self._stop.set()
        consumer, producer = self._consumer, self._producer
        try:
            if consumer is not None and producer is not None:
                async with self._lock:
                    await self._drain(set(self._pending))
                await self._lifecycle("stopped", reason="stop requested", wait=True)
        except Exception:
            log.exception("error while stopping; uncommitted batches will be re-read by the next owner")
        finally:
            for client in (consumer, producer):
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.stop()
            self._executor.shutdown(wait=False, cancel_futures=True)
            for topic in self.bindings:
                self.metrics.binding_up.labels(topic).set(0)
                self.health.fail(topic, "worker stopped")
            self.stopped.set()

    # --- the hot path ------------------------------------------------------------------------------

    async def _cycle(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        if not self._subscribed:
            await asyncio.sleep(self.settings.batch_max_latency_ms / 1000)
            return
        try:
            polled = await consumer.getmany(
                max_records=self.settings.batch_max_records, timeout_ms=self.settings.batch_max_latency_ms
            )
        except KafkaError as exc:
            log.error("poll failed, retrying in 1s: %r", exc)
            await asyncio.sleep(1.0)
            return
        polled_at = time.perf_counter()
        self.health.polled(self._subscribed)
        if polled:
            async with self._lock:
                if self.settings.exactly_once:
                    await self._transaction(polled, polled_at)
                else:
                    for tp, records in polled.items():
                        if tp in self._owned and records:
                            await self._handle(tp, records, polled_at)
        async with self._lock:
            await self._reap()
        await self._backpressure(wait=not polled)

    async def _process(self, binding: Binding, messages: list[Message]) -> BatchResult:
        if self.settings.process_in_thread:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._executor, lambda: binding.process(messages, worker_id=self.worker_id)
            )
        return binding.process(messages, worker_id=self.worker_id)

    async def _handle(self, tp: TopicPartition, records: Sequence[Any], polled_at: float) -> None:
        """Process one partition batch and submit its outputs (not awaiting the acknowledgements)."""
        binding = self.bindings[tp.topic]
        messages = to_messages(records)
        first, next_offset = messages[0].offset, messages[-1].offset + 1
        attempt, error = self._attempts.get((tp, first), (0, None))
        try:
            if error is not None and attempt > self.settings.batch_retries:
                raise error  # produce kept failing: give up without processing again
            result = await self._process(binding, messages)
        except Exception as exc:
            if attempt < self.settings.batch_retries:
                await self._retry_later(tp, first, attempt + 1, exc, "process")
                return
            log.error("giving up on the batch after %d attempts: dead-lettering %d messages as internal.%s",
                      attempt + 1, len(messages), type(exc).__name__, extra=log_extra(tp.topic, tp.partition, first))  # fmt: skip
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
        assert self._consumer is not None
        highwater = self._consumer.highwater(tp)
        if highwater is not None:
            self.metrics.set_lag(tp.topic, tp.partition, highwater - next_offset)

    async def _retry_later(self, tp: TopicPartition, first: int, attempt: int, exc: BaseException, stage: str) -> None:
        """Re-read the batch from ``first`` after a backoff, pausing only this partition."""
        assert self._consumer is not None
        self._attempts[(tp, first)] = (attempt, exc)
        delay = backoff(self.settings, max(attempt, 1))
        log.error("%s failed (attempt %d of %d), retrying the batch in %.1fs: %r", stage, attempt,
                  self.settings.batch_retries + 1, delay, exc, extra=log_extra(tp.topic, tp.partition, first),
                  exc_info=stage == "process")  # fmt: skip
        self.metrics.batch_failures.labels(tp.topic, stage).inc()
        self.metrics.binding_up.labels(tp.topic).set(0)
        self.health.fail(tp.topic, f"{stage} failed at partition {tp.partition} offset {first}: {type(exc).__name__}")
        reason = f"{stage} of {tp.topic}[{tp.partition}] from offset {first} failed: {type(exc).__name__}: {exc}"
        await self._lifecycle("binding_failed", contracts=[self.bindings[tp.topic].contract], reason=reason[:500])
        self._consumer.seek(tp, first)
        self._consumer.pause(tp)
        asyncio.get_running_loop().call_later(delay, self._resume, tp)

    def _resume(self, tp: TopicPartition) -> None:
        if self._consumer is not None and tp in self._owned:
            self._consumer.resume(tp)

    async def _partition_count(self, topic: str) -> int:
        if topic not in self._partitions:
            assert self._producer is not None
            self._partitions[topic] = len(await self._producer.partitions_for(topic))
        return self._partitions[topic]

    async def _send(self, tp: TopicPartition, result: BatchResult) -> list[asyncio.Future[Any]]:
        """Submit every output of a batch: one record batch per output topic, events one by one."""
        producer = self._producer
        assert producer is not None
        futures: list[asyncio.Future[Any]] = []
        groups: dict[tuple[str, int], list[OutRecord]] = {}
        for record in (*result.validated, *result.quarantined, *result.dead_lettered):
            part = record.partition
            if part is None:
                part = tp.partition % await self._partition_count(record.topic)
            groups.setdefault((record.topic, part), []).append(record)
        for (topic, part), records in groups.items():
            batch = producer.create_batch()
            for r in records:
                if batch.append(key=r.key, value=r.value, timestamp=r.timestamp_ms, headers=list(r.headers)) is None:
                    futures.append(await producer.send_batch(batch, topic, partition=part))
                    batch = producer.create_batch()
                    batch.append(key=r.key, value=r.value, timestamp=r.timestamp_ms, headers=list(r.headers))
            futures.append(await producer.send_batch(batch, topic, partition=part))
        for e in result.events:
            futures.append(
                await producer.send(e.topic, e.value, key=e.key, partition=e.partition, headers=list(e.headers))
            )
        return futures

    async def _transaction(self, polled: dict[TopicPartition, list[Any]], polled_at: float) -> None:
        """Exactly-once: the outputs of one poll and its offsets in one Kafka transaction."""
        producer, consumer = self._producer, self._consumer
        assert producer is not None and consumer is not None
        firsts = {tp: rs[0].offset for tp, rs in polled.items() if rs and tp in self._owned}
        try:
            await producer.begin_transaction()
            for tp, records in polled.items():
                if tp in firsts:
                    await self._handle(tp, records, polled_at)
            offsets = {b.tp: b.next_offset for q in self._pending.values() for b in q}
            if offsets:
                await producer.send_offsets_to_transaction(offsets, self.settings.app_id)
            await producer.commit_transaction()
        except Exception as exc:
            log.error("transaction failed, aborting and re-reading the poll: %r", exc)
            with contextlib.suppress(Exception):
                await producer.abort_transaction()
            for tp, first in firsts.items():
                self._pending.pop(tp, None)
                if tp in self._owned:
                    consumer.seek(tp, first)
            await asyncio.sleep(1.0)
            return
        self._done([b for q in self._pending.values() for b in q])
        self._pending.clear()

    def _done(self, batches: Sequence[_InFlight]) -> None:
        """Account for batches whose offsets were committed."""
        now = time.perf_counter()
        for b in batches:
            latency = now - b.polled_at
            self.commit_latencies.append(latency)
            self.metrics.commit_latency.labels(b.tp.topic).observe(latency)
            self.committed[b.tp] = max(self.committed.get(b.tp, 0), b.next_offset)

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
        consumer = self._consumer
        assert consumer is not None
        offsets: dict[TopicPartition, OffsetAndMetadata] = dict(self._uncommitted)
        done: list[_InFlight] = []
        for tp, queue in list(self._pending.items()):
            while queue and queue[0].done():
                batch = queue[0]
                error = batch.error()
                if error is not None:
                    self._pending.pop(tp)
                    if tp in self._owned:
                        await self._produce_failed(batch, error)
                    break
                queue.popleft()
                offsets[tp] = OffsetAndMetadata(batch.next_offset, "")
                done.append(batch)
            if not queue:
                self._pending.pop(tp, None)
        if offsets and await self._commit(offsets):
            self._done(done)

    async def _produce_failed(self, batch: _InFlight, error: BaseException) -> None:
        """Re-read a batch whose outputs were not all acknowledged; later batches of the partition too."""
        attempt, _ = self._attempts.get((batch.tp, batch.first), (0, None))
        retriable = isinstance(error, KafkaError) and (error.retriable or "Timeout" in type(error).__name__)
        if retriable:  # the broker is away: retry without counting, however long it takes
            log.error("broker %s unreachable: outputs of a batch were not acknowledged (%r)",
                      self.settings.bootstrap_servers, error, extra=log_extra(batch.tp.topic, batch.tp.partition,
                                                                               batch.first))  # fmt: skip
            await self._retry_later(batch.tp, batch.first, attempt, error, "produce")
        else:  # after batch_retries, the next read dead-letters the batch as internal.<error>
            await self._retry_later(batch.tp, batch.first, attempt + 1, error, "produce")

    async def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> bool:
        """Commit ``offsets`` of owned partitions; on failure keep them for the next commit."""
        consumer = self._consumer
        assert consumer is not None
        mine = {tp: o for tp, o in offsets.items() if tp in self._owned}
        self._uncommitted = mine
        if not mine:
            return True
        try:
            await asyncio.wait_for(consumer.commit(mine), _COMMIT_TIMEOUT)
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
            await asyncio.wait(futures, timeout=self.settings.batch_max_latency_ms / 1000 + 30.0)
        await self._reap()

    # --- rebalances and events -----------------------------------------------------------------------

    async def partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._lock:
            await self._drain(set(revoked) & set(self._pending))
            self._owned -= set(revoked)
            self._uncommitted = {tp: o for tp, o in self._uncommitted.items() if tp in self._owned}
            for tp in revoked:
                self._pending.pop(tp, None)
                self.metrics.forget_partition(tp.topic, tp.partition)
            self._attempts = {k: v for k, v in self._attempts.items() if k[0] not in revoked}
        if revoked:
            await self._lifecycle("partitions_revoked", partitions=revoked)

    async def partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._generation += 1
        self._owned |= set(assigned)
        await self._lifecycle("partitions_assigned", partitions=assigned)

    async def _lifecycle(
        self,
        phase: str,
        *,
        contracts: Sequence[Contract] | None = None,
        partitions: set[TopicPartition] | None = None,
        reason: str | None = None,
        wait: bool = False,
    ) -> None:
        """Emit a lifecycle event (partitions name their contracts); never raises."""
        producer = self._producer
        if partitions is not None:
            contracts = list({id(b.contract): b.contract for tp in partitions
                              for b in [self.bindings[tp.topic]]}.values())  # fmt: skip
        chosen = (
            contracts
            if contracts is not None
            else list({id(b.contract): b.contract for b in self.bindings.values()}.values())
        )
        parts = [(tp.topic, tp.partition) for tp in partitions or ()]
        log.info("lifecycle %s %s%s", phase, ", ".join(f"{t}[{p}]" for t, p in sorted(parts)),
                 f" ({reason})" if reason else "")  # fmt: skip
        if producer is None:
            return
        try:
            event = lifecycle(
                phase, worker_id=self.worker_id, app_id=self.settings.app_id, mode=str(self.settings.mode),
                contracts=chosen, partitions=parts, reason=reason, started_at=self._started_at,
                generation=self._generation if partitions is not None else None,
            )  # fmt: skip
            key, value, headers = to_kafka(event)
            future = await producer.send(self.settings.events_topic, value, key=key, headers=headers)
            if wait:
                await asyncio.wait_for(future, 10.0)
        except Exception as exc:
            log.warning("could not emit the %s lifecycle event: %r", phase, exc)


async def _amain() -> int:
    from streams.kafka.app import run_worker_async

    return await run_worker_async(Settings())


def run_worker(settings: Settings) -> int:
    """Run a worker until SIGINT/SIGTERM; see :func:`streams.kafka.app.run_worker`."""
    from streams.kafka.app import run_worker as run

    return run(settings)


def main() -> int:
    """``python -m streams.kafka.worker``: settings from the environment, exit 2 on configuration errors."""
    from streams.kafka.app import main as app_main

    return app_main()


if __name__ == "__main__":
    raise SystemExit(main())
