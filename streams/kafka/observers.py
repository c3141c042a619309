"""Observers of the batch worker: metrics, health and lifecycle events subscribe to its hooks (faust's Sensor model).

:class:`WorkerObserver` lists every hook, each a no-op: subclass it and override what you
need, then pass the instance in ``BatchWorker(observers=[...])``. Hooks are called in the
order observers were given. Those that may do I/O (emit an event) are coroutines; the
per-batch and per-commit hooks are plain calls, kept cheap: they run on the hot path.
A hook must not raise (an exception propagates into the worker loop).

The worker's own observers: :class:`MetricsObserver` (Prometheus), :class:`HealthObserver`
(``/health``) and :class:`LifecycleObserver` (``worker.lifecycle`` CloudEvents). Later:
policies, state checkpoints and window partials.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from streams.kafka.connection import auth_failure
from streams.kafka.transport import TopicPartition, Transport
from streams.observability import Health, Lifecycle, Metrics
from streams.pipeline.records import BatchResult

if TYPE_CHECKING:
    from streams.pipeline.binding import Binding

__all__ = ["STOP_TIMEOUT_S", "HealthObserver", "LifecycleObserver", "MetricsObserver", "Observers", "WorkerObserver"]

log = logging.getLogger("streams.kafka.worker")

#: how long the worker waits for one observer's ``on_stopping`` (the stream-time observer bounds its own waits)
STOP_TIMEOUT_S = 30.0


class WorkerObserver:
    """Every hook of :class:`~streams.kafka.batches.BatchWorker`, as no-ops."""

    def on_health(self, health: Health) -> None:
        """The worker's ``/health``, given once when the worker is built: an observer may publish the state of
        its component in ``health.components`` (shown, not judged)."""

    async def on_start(self, transport: Transport) -> None:
        """The transport is connected; consuming starts."""

    async def on_binding_failed(self, topic: str, reason: str) -> None:
        """A bound source topic cannot be consumed (missing topic)."""

    def on_subscribed(self, topics: Sequence[str], missing: Sequence[str]) -> None:
        """The transport consumes ``topics``; bound ``missing`` ones do not exist (yet)."""

    def on_unreachable(self, topics: Sequence[str], reason: str) -> None:
        """The cluster cannot be reached: ``topics`` are not consumed until it answers again."""

    def on_poll(self, topics: Sequence[str]) -> None:
        """A poll returned (with or without records) for the subscribed ``topics``."""

    def on_poll_failed(self, topics: Sequence[str], error: BaseException, consecutive: int) -> None:
        """A poll (fetch) of ``topics`` raised ``error`` (the client's), the ``consecutive``-th time in a row."""

    def on_batch_given_up(self, tp: TopicPartition, first: int, error: BaseException) -> None:
        """A batch failed on every retry: it is being dead-lettered as ``internal.<Exception>``."""

    def on_batch_end(self, tp: TopicPartition, binding: Binding, messages: int, result: BatchResult,
                     lag: int | None) -> None:  # fmt: skip
        """A partition batch was processed and its outputs submitted (not yet acknowledged)."""

    async def on_batch_error(self, tp: TopicPartition, first: int, stage: str, error: BaseException) -> None:
        """Processing (``stage`` ``process``) or producing (``produce``) a batch failed; it will be retried."""

    def on_commit(self, tp: TopicPartition, next_offset: int, latency: float) -> None:
        """A batch's offsets were committed, ``latency`` seconds after its poll."""

    def on_commit_failed(self, topic: str, error: BaseException) -> None:
        """A commit failed (cluster unreachable); the offsets are kept for the next commit."""

    async def on_assign(self, assigned: set[TopicPartition]) -> None:
        """The group assigned ``assigned`` to this worker."""

    async def on_revoke(self, revoked: set[TopicPartition]) -> None:
        """``revoked`` were drained, committed and released."""

    async def on_stopping(self) -> None:
        """In-flight batches were drained and committed; the clients are about to close."""

    def on_stopped(self) -> None:
        """The clients are closed."""


class Observers(WorkerObserver):
    """Calls each hook on every observer in turn."""

    def __init__(self, observers: Iterable[WorkerObserver]) -> None:
        self.observers = tuple(observers)

    def on_health(self, health: Health) -> None:
        for o in self.observers:
            o.on_health(health)

    async def on_start(self, transport: Transport) -> None:
        for o in self.observers:
            await o.on_start(transport)

    async def on_binding_failed(self, topic: str, reason: str) -> None:
        for o in self.observers:
            await o.on_binding_failed(topic, reason)

    def on_subscribed(self, topics: Sequence[str], missing: Sequence[str]) -> None:
        for o in self.observers:
            o.on_subscribed(topics, missing)

    def on_unreachable(self, topics: Sequence[str], reason: str) -> None:
        for o in self.observers:
            o.on_unreachable(topics, reason)

    def on_poll(self, topics: Sequence[str]) -> None:
        for o in self.observers:
            o.on_poll(topics)

    def on_poll_failed(self, topics: Sequence[str], error: BaseException, consecutive: int) -> None:
        for o in self.observers:
            o.on_poll_failed(topics, error, consecutive)

    def on_batch_given_up(self, tp: TopicPartition, first: int, error: BaseException) -> None:
        for o in self.observers:
            o.on_batch_given_up(tp, first, error)

    def on_batch_end(self, tp: TopicPartition, binding: Binding, messages: int, result: BatchResult,
                     lag: int | None) -> None:  # fmt: skip
        for o in self.observers:
            o.on_batch_end(tp, binding, messages, result, lag)

    async def on_batch_error(self, tp: TopicPartition, first: int, stage: str, error: BaseException) -> None:
        for o in self.observers:
            await o.on_batch_error(tp, first, stage, error)

    def on_commit(self, tp: TopicPartition, next_offset: int, latency: float) -> None:
        for o in self.observers:
            o.on_commit(tp, next_offset, latency)

    def on_commit_failed(self, topic: str, error: BaseException) -> None:
        for o in self.observers:
            o.on_commit_failed(topic, error)

    async def on_assign(self, assigned: set[TopicPartition]) -> None:
        for o in self.observers:
            await o.on_assign(assigned)

    async def on_revoke(self, revoked: set[TopicPartition]) -> None:
        for o in self.observers:
            await o.on_revoke(revoked)

    async def on_stopping(self) -> None:
        """Each observer's ``on_stopping``, waited for at most :data:`STOP_TIMEOUT_S` (a stopping worker must end:
        what was not acknowledged is read again by the next owner); a failure or a timeout is logged."""
        for o in self.observers:
            stopping = asyncio.ensure_future(o.on_stopping())
            await asyncio.wait([stopping], timeout=STOP_TIMEOUT_S)
            if not stopping.done():
                stopping.cancel()
                log.error("%s did not stop within %.0f s; stopping without it", type(o).__name__, STOP_TIMEOUT_S)
            elif not stopping.cancelled() and stopping.exception() is not None:
                log.error("%s failed while stopping", type(o).__name__, exc_info=stopping.exception())

    def on_stopped(self) -> None:
        for o in self.observers:
            o.on_stopped()


class MetricsObserver(WorkerObserver):
    """Prometheus metrics of the worker (``/metrics``)."""

    def __init__(self, metrics: Metrics, bindings: Mapping[str, Binding]) -> None:
        self.metrics, self.topics = metrics, tuple(bindings)
        for b in bindings.values():
            metrics.bind(b.contract.id, b.contract.version, b.contract.sha256, b.topic)
        self._severity = {t: {r.name: str(r.severity) for r in b.schema.rules} for t, b in bindings.items()}

    def on_subscribed(self, topics: Sequence[str], missing: Sequence[str]) -> None:
        for topic in topics:
            self.metrics.binding_up.labels(topic).set(1)

    def on_unreachable(self, topics: Sequence[str], reason: str) -> None:
        for topic in topics:
            self.metrics.binding_up.labels(topic).set(0)

    def on_batch_given_up(self, tp: TopicPartition, first: int, error: BaseException) -> None:
        self.metrics.dead_lettered_batches.labels(tp.topic).inc()

    def on_batch_end(self, tp: TopicPartition, binding: Binding, messages: int, result: BatchResult,
                     lag: int | None) -> None:  # fmt: skip
        m = self.metrics
        m.binding_up.labels(tp.topic).set(1)
        m.observe_batch(
            contract_id=binding.contract.id, topic=tp.topic, messages=messages, counts=result.counts,
            rule_failures=result.rule_failures, severities=self._severity[tp.topic],
            decode_seconds=result.decode_seconds, validate_seconds=result.validate_seconds,
            rule_errors=getattr(result.report, "rule_errors", None) or (),
        )  # fmt: skip
        if lag is not None:
            m.set_lag(tp.topic, tp.partition, lag)

    async def on_batch_error(self, tp: TopicPartition, first: int, stage: str, error: BaseException) -> None:
        self.metrics.batch_failures.labels(tp.topic, stage).inc()
        self.metrics.binding_up.labels(tp.topic).set(0)

    def on_commit(self, tp: TopicPartition, next_offset: int, latency: float) -> None:
        self.metrics.commit_latency.labels(tp.topic).observe(latency)

    def on_commit_failed(self, topic: str, error: BaseException) -> None:
        self.metrics.batch_failures.labels(topic, "commit").inc()

    async def on_revoke(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            self.metrics.forget_partition(tp.topic, tp.partition)

    def on_stopped(self) -> None:
        for topic in self.topics:
            self.metrics.binding_up.labels(topic).set(0)


class HealthObserver(WorkerObserver):
    """What ``/health`` reports per binding.

    A fetch failing ``FETCH_FAILURES`` times in a row fails the binding with its cause until a poll works
    again; a (re)subscription or a probe of the cluster does not count as a poll.
    """

    FETCH_FAILURES = 3

    def __init__(self, health: Health, topics: Iterable[str]) -> None:
        self.health, self.topics = health, tuple(topics)
        self.fetch_failing: dict[str, str] = {}
        health.register(self.topics)

    def on_subscribed(self, topics: Sequence[str], missing: Sequence[str]) -> None:
        for topic in topics:
            self.health.ok(topic)
            if topic in self.fetch_failing:
                self.health.fail(topic, self.fetch_failing[topic])
        for topic in missing:
            self.health.fail(topic, "source topic missing")
        self.health.polled(t for t in topics if t not in self.health.last_poll)  # starts the clock, never resets it

    def on_unreachable(self, topics: Sequence[str], reason: str) -> None:
        for topic in topics:
            self.health.fail(topic, reason)

    def on_poll(self, topics: Sequence[str]) -> None:
        self.health.polled(topics)
        for topic in [t for t in topics if t in self.fetch_failing]:
            del self.fetch_failing[topic]
            self.health.ok(topic)

    def on_poll_failed(self, topics: Sequence[str], error: BaseException, consecutive: int) -> None:
        refused = auth_failure(error)  # said at once: a retry does not fix credentials or ACLs
        if consecutive < self.FETCH_FAILURES and refused is None:
            return
        reason = refused or f"fetch failed {consecutive} times in a row: {type(error).__name__}: {error}"[:300]
        for topic in topics:
            self.fetch_failing[topic] = reason
            self.health.fail(topic, reason)

    def on_batch_end(self, tp: TopicPartition, binding: Binding, messages: int, result: BatchResult,
                     lag: int | None) -> None:  # fmt: skip
        self.health.ok(tp.topic)

    async def on_batch_error(self, tp: TopicPartition, first: int, stage: str, error: BaseException) -> None:
        self.health.fail(tp.topic, f"{stage} failed at partition {tp.partition} offset {first}: {type(error).__name__}")

    def on_stopped(self) -> None:
        for topic in self.topics:
            self.health.fail(topic, "worker stopped")


class LifecycleObserver(WorkerObserver):
    """``worker.lifecycle`` CloudEvents: started, stopped, partitions assigned/revoked, binding failures."""

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle

    async def on_start(self, transport: Transport) -> None:
        self.lifecycle.send = transport.send_event
        await self.lifecycle.emit("started")

    async def on_binding_failed(self, topic: str, reason: str) -> None:
        await self.lifecycle.emit("binding_failed", topics=[topic], reason=reason)

    async def on_batch_error(self, tp: TopicPartition, first: int, stage: str, error: BaseException) -> None:
        reason = f"{stage} of {tp.topic}[{tp.partition}] from offset {first} failed: {type(error).__name__}: {error}"
        await self.lifecycle.emit("binding_failed", topics=[tp.topic], reason=reason[:500])

    async def on_assign(self, assigned: set[TopicPartition]) -> None:
        self.lifecycle.generation += 1
        await self.lifecycle.emit("partitions_assigned", partitions=[(tp.topic, tp.partition) for tp in assigned])

    async def on_revoke(self, revoked: set[TopicPartition]) -> None:
        if revoked:
            await self.lifecycle.emit("partitions_revoked", partitions=[(tp.topic, tp.partition) for tp in revoked])

    async def on_stopping(self) -> None:
        await self.lifecycle.emit("stopped", reason="stop requested", wait=True)
