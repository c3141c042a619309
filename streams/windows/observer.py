"""Stream time in the worker: the observer of the worker's hooks, and :func:`install`.

:class:`StreamTimeObserver` restores a source partition's state from the compacted
topics when it is assigned (its :class:`~streams.windows.worker.WindowsStage` does the
reading of the records), sends heartbeats, and on the worker that consumes partition 0 of
a source topic merges the stream's partials and publishes each final window's records
(built by the injected ``summarize``: the window summary, rule violations, drift events).
:func:`install` puts a stage on every binding and returns the observer.

The worker processes a batch (its stage's :meth:`~streams.windows.stream.StreamTime.process`) in a thread while the
event loop commits the batches before it; everything the observer reads or changes of a stream's state it does
holding the stream's lock (:attr:`~streams.windows.stream.StreamTime.lock`), taken without blocking the loop, and
it sends nothing while it holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from streams.contracts.model import Contract
from streams.errors import SettingsError
from streams.kafka.observers import WorkerObserver
from streams.kafka.transport import TopicPartition, Transport
from streams.pipeline.records import Message, OutRecord
from streams.settings import Settings
from streams.windows.drift_metrics import DriftMetrics
from streams.windows.finalize import WindowVerdict
from streams.windows.merger import WindowMerger, window_texts
from streams.windows.metrics import StreamTimeMetrics
from streams.windows.topics import MERGER_PARTITION, changelog_topic, state_topic
from streams.windows.worker import WindowsStage
from streams.windows.worker import now_ms as wall_ms

__all__ = ["PUBLISHED_MEMORY", "StateReader", "StreamTimeObserver", "Summarize", "TransportStateReader", "install"]

#: how often the claims older than the uniqueness horizon are dropped
EXPIRE_EVERY_MS = 30_000

#: how long stopping waits for the tick task to end, and for the last tick (seconds): a stopping worker must end
STOP_TIMEOUT_S = 10.0

#: how often the observer tries again to take a stream's lock held by a batch being processed (seconds)
LOCK_RETRY_S = 0.002

#: window verdicts the observer keeps in :attr:`StreamTimeObserver.published` (the latest: memory stays flat)
PUBLISHED_MEMORY = 256

log = logging.getLogger(__name__)

#: Builds the records of a final window's verdict: its ``window.summary``, one ``rule.violation`` per failed rule
#: and its drift events (injected: events sit above this layer).
Summarize = Callable[[Contract, WindowVerdict, str], Sequence[OutRecord]]


class StateReader(Protocol):
    """Reads a partition of a (compacted) topic from an offset to its current end."""

    async def read(self, topic: str, partition: int, start: int = 0) -> tuple[list[Message], int]:
        """The records from ``start`` to the end, and the next offset to read."""
        ...


class StreamTimeObserver(WorkerObserver):
    """Restores stream-time state on assignment, sends heartbeats, merges and publishes final windows."""

    def __init__(
        self,
        settings: Settings,
        stages: dict[str, WindowsStage],
        reader: StateReader,
        summarize: Summarize,
        *,
        worker_id: str,
        tick_seconds: float = 1.0,
        prepare: Callable[[], Awaitable[None]] | None = None,
        drift_metrics: DriftMetrics | None = None,
    ) -> None:
        self.settings, self.stages, self.reader, self.summarize = settings, stages, reader, summarize
        self.drift_metrics = drift_metrics
        self.prepare = prepare
        self.worker_id, self.tick_seconds = worker_id, tick_seconds
        self.transport: Transport | None = None
        self.mergers: dict[str, tuple[WindowMerger, int]] = {}  # topic -> (merger, next offset of the state topic)
        self.published: deque[WindowVerdict] = deque(maxlen=PUBLISHED_MEMORY)  # the latest, bounded
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()  # on_start finished (well or not)
        self._next_expiry = 0  # wall-clock ms of the next expiry of uniqueness claims
        self._ready = False  # ... and the stream-time topics are there
        self._stopping = False  # the tick task ends at its next turn even when its cancellation was lost

    async def on_start(self, transport: Transport) -> None:
        """Create (or check) the stream-time topics. Until this is done, :meth:`on_assign` waits: a first
        assignment can arrive while the topics are being created, and reading a topic that does not exist yet
        lets the broker auto-create it with its defaults (one partition, not compacted)."""
        try:
            self.transport = transport
            if self.prepare is not None:
                await self.prepare()
            for topic in (state_topic(self.settings.app_id), changelog_topic(self.settings.app_id)):
                have = await transport.partition_count(topic)
                if have < self.settings.state_partitions:
                    raise SettingsError(
                        f"topic {topic} has {have} partitions, fewer than STREAMS_STATE_PARTITIONS="
                        f"{self.settings.state_partitions}; create it with at least that many (compacted)"
                    )
            for stage in self.stages.values():
                stage.stream.partitions = await transport.partition_count(stage.plan.schema_obj.topic)
                await self._announce(transport, stage)
            self._task = asyncio.create_task(self._ticks())
            self._ready = True
        finally:
            self._started.set()

    async def _announce(self, transport: Transport, stage: WindowsStage) -> None:
        """Write the contract version this worker runs to its stream's partition of the internal topic, before any
        partial of this worker: a merger running another version judges this version's windows with it."""
        record = stage.contract_record()
        if record is None:
            log.warning("stream-time: the text of %s is not known: a merger on another version of it will publish "
                        "this version's windows without checks", stage.plan.contract.ref)  # fmt: skip
            return
        try:
            await stage.send(transport, record)
        except Exception:  # e.g. a contract beyond the broker's message size: its windows are published unjudged
            log.warning("stream-time: could not write the text of %s to the internal topic: a merger on another "
                        "version of it will publish this version's windows without checks",
                        stage.plan.contract.ref, exc_info=True)  # fmt: skip

    async def on_assign(self, assigned: set[TopicPartition]) -> None:
        """Restore every assigned source partition: the stream's two topic partitions are read once per stream."""
        await self._started.wait()
        if not self._ready:
            return  # the stream-time topics are not usable: the worker stops with on_start's error
        now = wall_ms()
        by_topic: dict[str, list[int]] = {}
        for tp in assigned:
            if tp.topic in self.stages:
                by_topic.setdefault(tp.topic, []).append(tp.partition)
        for topic, parts in sorted(by_topic.items()):
            stage = self.stages[topic]
            state, end = await self.reader.read(stage.state_topic, stage.partition)
            changelog, _ = await self.reader.read(stage.changelog_topic, stage.partition)
            async with holding(stage.stream.lock):
                for p in sorted(parts):
                    stage.restore(p, state, changelog, now)
            if MERGER_PARTITION in parts:
                self.mergers[topic] = (stage.merger(state), end)

    def on_commit(self, tp: TopicPartition, next_offset: int, latency: float) -> None:
        """The partition's outputs below ``next_offset`` are written: its tick heartbeats may carry its clock.

        Without the stream's lock (this runs on the loop and cannot wait for it): it only raises the partition's
        ``settled_through``, which only this writes and which a batch being processed does not read."""
        stage = self.stages.get(tp.topic)
        if stage is not None:
            stage.stream.settle(tp.partition, next_offset)

    async def on_revoke(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            stage = self.stages.get(tp.topic)
            if stage is not None:
                async with holding(stage.stream.lock):
                    stage.stream.revoke(tp.partition)
            if tp.partition == MERGER_PARTITION:
                self.mergers.pop(tp.topic, None)

    async def on_stopping(self) -> None:
        """Stop the ticks and run a last one, each waited for at most :data:`STOP_TIMEOUT_S`.

        A cancellation can be lost: on Python 3.11 ``asyncio.wait_for`` (the state reader awaits end offsets in
        one) returns its result when the cancel lands in the loop iteration in which its awaitable completed. The
        tick task then went on ticking, and awaiting it here kept the worker from ever stopping (the bench's
        ``gate-st`` hung after its last commit). It now ends at its next turn, and is not awaited without bound."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=STOP_TIMEOUT_S)
            if not self._task.done():
                log.warning("stream-time: the tick task did not end within %.0f s of its cancellation", STOP_TIMEOUT_S)
        last = asyncio.ensure_future(self.tick())
        try:
            await asyncio.wait([last], timeout=STOP_TIMEOUT_S)
            if not last.done():
                last.cancel()
                raise TimeoutError(f"the last tick took longer than {STOP_TIMEOUT_S:.0f} s")
            last.result()
        except Exception:  # the last tick is best effort: the next owner publishes what is left
            log.warning("stream-time: the last tick before stopping failed", exc_info=True)
        finally:
            close = getattr(self.reader, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(close(), STOP_TIMEOUT_S)

    async def _ticks(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.tick_seconds)
            try:
                await self.tick()
            except Exception:  # a failed tick is retried at the next one; the worker keeps running
                log.exception("stream-time tick failed")

    async def tick(self, now_ms: int | None = None) -> list[WindowVerdict]:
        """Heartbeats of the assigned partitions; the final windows of the streams merged here, published."""
        transport = self.transport
        if transport is None:
            return []
        now = wall_ms() if now_ms is None else now_ms
        expire = now >= self._next_expiry
        if expire:
            self._next_expiry = now + EXPIRE_EVERY_MS
        for stage in self.stages.values():
            async with holding(stage.stream.lock):
                beats = stage.stream.heartbeats(now)
                # claims older than the horizon go (their changelog tombstones ride with the next batch)
                dropped = stage.stream.expire() if expire else 0
            for hb in beats:
                await stage.send(transport, stage._record(hb))
            if dropped:
                log.info("uniqueness of %s: %d claims older than the horizon dropped", stage.plan.schema_obj.topic,
                         dropped)  # fmt: skip
        done: list[WindowVerdict] = []
        for topic, (merger, position) in list(self.mergers.items()):
            stage = self.stages[topic]
            fresh, position = await self.reader.read(stage.state_topic, stage.partition, position)
            if self.mergers.get(topic, (None, 0))[0] is not merger:
                # partition 0 was revoked while reading (perhaps assigned again, with a merger restored from the
                # topic): putting this one back kept a worker that no longer owns it merging and publishing next to
                # the new owner for good
                continue
            stage.feed(merger, fresh)
            self.mergers[topic] = (merger, position)
            due = merger.due(now)
            if stage.metrics is not None:
                stage.metrics.open.labels(topic).set(len({slot[0] for slot in merger.snapshots}))
            if not due:
                continue
            texts = window_texts(due)  # each window's summaries name every text it is published for
            for partial in due:  # each judged by the contract version that counted it; freshness: at this tick
                contract, verdict = stage.judges.judge(partial, merger.contracts, closed_ms=now)
                verdict = dataclasses.replace(verdict, contract_versions=texts[(partial.key.start_ms,
                                                                                partial.key.end_ms)])  # fmt: skip
                if self.drift_metrics is not None:
                    self.drift_metrics.observe(verdict)
                for record in self.summarize(contract, verdict, self.worker_id):
                    await transport.send_outside(record)
                if stage.metrics is not None:
                    stage.metrics.published(topic, window_end_ms=verdict.key.end_ms, now_ms=wall_ms())
                done.append(verdict)
            closed, tombstones = merger.close(due)
            await stage.send(transport, stage._record(closed))
            for key in tombstones:
                await stage.send(transport, OutRecord(stage.state_topic, None, key, partition=stage.partition))
            async with holding(stage.stream.lock):
                for p in list(stage.stream.states):
                    stage.stream.close_through(p, closed.through_ms)
        self.published.extend(done)
        return done


@contextlib.asynccontextmanager
async def holding(lock: threading.Lock) -> AsyncIterator[None]:
    """``lock`` held, taken without blocking the event loop: a batch being processed in a thread may hold it (its
    commits and acknowledgements go on meanwhile). Never await while holding it: the batch would wait too."""
    while not lock.acquire(blocking=False):
        await asyncio.sleep(LOCK_RETRY_S)
    try:
        yield
    finally:
        lock.release()


class TransportStateReader:
    """Reads the stream-time topics from a transport that keeps them in memory (``records(topic, partition)``,
    as :class:`streams.testing.transport.InMemoryTransport` does)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    async def read(self, topic: str, partition: int, start: int = 0) -> tuple[list[Message], int]:
        records = list(self.transport.records(topic, partition))
        return records[start:], len(records)


def install(
    settings: Settings,
    bindings: Iterable[Any],
    summarize: Summarize,
    reader: StateReader,
    *,
    worker_id: str,
    tick_seconds: float = 1.0,
    prepare: Callable[[], Awaitable[None]] | None = None,
    metrics: StreamTimeMetrics | None = None,
    registry: CollectorRegistry | None = None,
) -> StreamTimeObserver:
    """Put a :class:`WindowsStage` on every binding and return the observer to give the worker
    (``metrics``: the stream-time series; ``registry``: the worker's metrics registry, for the drift gauges)."""
    stages: dict[str, WindowsStage] = {}
    for b in bindings:
        stage = WindowsStage(b.contract, b.schema, settings, plan=getattr(b, "plan", None))
        stage.metrics = metrics
        if metrics is not None:
            metrics.declare(b.topic, stage.stream.unique_columns)
        b.stages.append(stage)
        stages[b.topic] = stage
    drift = DriftMetrics(registry) if registry is not None and any(s.monitor for s in stages.values()) else None
    return StreamTimeObserver(
        settings, stages, reader, summarize, worker_id=worker_id, tick_seconds=tick_seconds, prepare=prepare,
        drift_metrics=drift,
    )  # fmt: skip
