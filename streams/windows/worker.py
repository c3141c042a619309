"""Stream time in the worker: a pipeline stage per binding (the observer: :mod:`streams.windows.observer`).

:class:`WindowsStage` (one per binding) runs inside ``Binding.process`` between
validation and routing: stream uniqueness and event time amend the routing verdict
(:func:`~streams.windows.route.amend`), and the batch's window partials, heartbeat
and uniqueness changes become output records of the batch, so they are acknowledged
before its offsets are committed. It also restores a source partition from the
compacted topics' records and feeds a stream's merger.

Settings: ``STREAMS_WINDOW_SECONDS``, ``STREAMS_ALLOWED_LATENESS_SECONDS``,
``STREAMS_WINDOW_IDLE_CLOSE_SECONDS``, ``STREAMS_MAX_CLOCK_SKEW_SECONDS``,
``STREAMS_UNIQUE_HORIZON_SECONDS`` (the contract's ``qstreams.*`` values win).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from streams.contracts.model import Contract, SchemaObject
from streams.contracts.stream import StreamSpec
from streams.formats.reasons import empty_frame
from streams.kafka.transport import Transport
from streams.pipeline.records import Message, OutRecord
from streams.profiles.monitor import DriftMonitor
from streams.settings import Settings
from streams.validation.report import ValidationReport
from streams.windows.codec import (
    Closed,
    ContractText,
    Heartbeat,
    Partial,
    Undecodable,
    decode,
    encode,
    record_key,
    record_kind,
)
from streams.windows.merger import WindowMerger
from streams.windows.metrics import StreamTimeMetrics
from streams.windows.plan import WindowPlan
from streams.windows.route import amend
from streams.windows.stream import BatchTime, StreamConfig, StreamTime
from streams.windows.topics import (
    changelog_key,
    changelog_topic,
    parse_changelog_key,
    state_topic,
    stream_partition,
)
from streams.windows.unique import Chunk, UniqueChanges, decode_chunk, encode_chunk
from streams.windows.versions import Judges

if TYPE_CHECKING:
    from streams.validation.engine import CompiledPlan
    from streams.windows.partial import WindowPartial

__all__ = ["WindowsStage", "config_of", "now_ms"]

log = logging.getLogger(__name__)


def config_of(settings: Settings, spec: StreamSpec) -> StreamConfig:
    """The binding's durations: the contract's ``qstreams.*`` values, else the settings'."""
    s = spec.resolve(
        window_s=settings.window_seconds,
        lateness_s=settings.allowed_lateness_seconds,
        unique_s=settings.unique_horizon_seconds,
    )
    assert s.window_ms is not None and s.allowed_lateness_ms is not None and s.unique_within_ms is not None
    return StreamConfig(
        window_ms=s.window_ms,
        lateness_ms=s.allowed_lateness_ms,
        idle_ms=round(settings.window_idle_close_seconds * 1000),
        max_skew_ms=round(settings.max_clock_skew_seconds * 1000),
        unique_ms=s.unique_within_ms,
    )


def _kafka_ms(m: Message) -> int:
    """A record's Kafka timestamp; -1 when it has none (None, or Kafka's -1): not a time (``docs/stream-time.md``)."""
    t = m.timestamp_ms
    return -1 if t is None or t < 0 else t


def now_ms() -> int:
    return int(time.time() * 1000)


class WindowsStage:
    """Stream time of one binding (see the module docstring)."""

    judges_windows = True  # rule violations are published per window (by the merger), not per batch

    def __init__(self, contract: Contract, schema_obj: SchemaObject, settings: Settings, *,
                 plan: CompiledPlan | None = None) -> None:  # fmt: skip
        """``plan``: the binding's compiled plan; its ``conform`` takes the frame it just validated, conformed
        already (without it the stage compiles its own and conforms each batch a second time)."""
        spec = getattr(schema_obj, "stream", None) or StreamSpec()
        self.plan = WindowPlan.of(contract, schema_obj, spec)
        self.config = config_of(settings, spec)
        self.settings = settings
        #: drift monitoring (the contract names a ``qstreams.reference``): window slices are profiled
        self.monitor = DriftMonitor.from_contract(contract, schema_obj.name)
        profile = self.monitor.profile if self.monitor is not None else None
        self.stream = StreamTime(self.plan, self.config, partitions=1, profile=profile)
        #: judges each final window by the contract version that counted its records (the merger's worker)
        self.judges = Judges(self.plan, self.monitor)
        self.state_topic = state_topic(settings.app_id)
        self.changelog_topic = changelog_topic(settings.app_id)
        #: partitions of the stream-time topics: fixed by the settings, so every worker (and a restart, whatever
        #: the order of start and first assignment) maps a stream to the same partition
        self.state_partitions = settings.state_partitions
        self._empty: ValidationReport | None = None
        #: set by :func:`install` when the worker exposes metrics
        self.metrics: StreamTimeMetrics | None = None
        self._conform: Callable[[pl.DataFrame], pl.DataFrame] | None = None
        if self.plan.needs_frame or self.monitor is not None:
            from streams.validation.engine import compile_plan

            if plan is not None:
                plan.remember_conformed = True
            self._conform = (plan or compile_plan(contract, schema_obj.name)).conform

    @property
    def partition(self) -> int:
        """This stream's partition of the stream-time topics."""
        c, so = self.plan.contract, self.plan.schema_obj
        return stream_partition(c.id, so.name, so.topic, self.state_partitions)

    def amend(
        self,
        messages: Sequence[Message],
        frame: pl.DataFrame,
        rows: Sequence[int],
        report: ValidationReport | None,
        dead: Sequence[int],
        irregular: Sequence[tuple[int, tuple[str, ...], tuple[str, ...]]] = (),
    ) -> tuple[ValidationReport | None, list[OutRecord]]:
        """The batch's routing verdict on the stream, and its state records to produce with it.

        ``frame``: the decoded rows (the rows of ``report``, None when nothing decoded);
        ``rows``: the message index of each row; ``dead``: indices of dead-lettered messages.
        """
        amended, out, _ = self._account(messages, frame, rows, report, dead, irregular, waiting=False)
        return amended, self._wrote([self._record(r) for r in out.records] + self._changelog(out.changes))

    def amend_poll(
        self,
        messages: Sequence[Message],
        frame: pl.DataFrame,
        rows: Sequence[int],
        report: ValidationReport | None,
        dead: Sequence[int],
        irregular: Sequence[tuple[int, tuple[str, ...], tuple[str, ...]]] = (),
    ) -> tuple[ValidationReport | None, dict[int, list[OutRecord]]]:
        """As :meth:`amend`, for a poll of several source partitions' batches (``messages``: the batches one after
        the other) accounted in one call: the verdict of the poll's rows, and the state records of each partition's
        batch, which are what :meth:`amend` gives the batches one by one in the poll's order (everything stream
        time keeps is per partition). Uniqueness tombstones waiting since the last batch (the tick's expiry) ride
        with the first batch, as they would one by one."""
        amended, out, waiting = self._account(messages, frame, rows, report, dead, irregular, waiting=True)
        order = list(dict.fromkeys(m.partition for m in messages))
        records: dict[int, list[OutRecord]] = {p: [] for p in order}
        for r in out.records:
            records[r.partition if r.partition in records else order[0]].append(self._record(r))
        first: dict[tuple[str, int], UniqueChanges] = {}
        for (column, p), old in waiting:  # in the order one by one the first batch takes them
            new = out.changes.get((column, p)) if p == order[0] else None
            if old is not None or new is not None:
                first[(column, p)] = _joined(old, new)
        records[order[0]] += self._changelog(first)
        for p in order[1:]:
            records[p] += self._changelog({(c, q): ch for (c, q), ch in out.changes.items() if q == p})
        left = {k: ch for k, ch in out.changes.items() if k[1] not in records}  # none expected: claims are per row
        records[order[0]] += self._changelog(left)
        for part in records.values():
            self._wrote(part)
        return amended, records

    def _account(
        self,
        messages: Sequence[Message],
        frame: pl.DataFrame,
        rows: Sequence[int],
        report: ValidationReport | None,
        dead: Sequence[int],
        irregular: Sequence[tuple[int, tuple[str, ...], tuple[str, ...]]],
        *,
        waiting: bool,
    ) -> tuple[ValidationReport | None, BatchTime, list[tuple[tuple[str, int], UniqueChanges | None]]]:
        """The amended verdict and the stream-time outcome of the rows; ``waiting``: first take the uniqueness
        changes waiting from before, so the outcome's are the batch's own, and return them for every column and
        partition (None: nothing waited), in the order of the state (which a batch's changes follow)."""
        parts = np.array([messages[i].partition for i in rows], dtype=np.int64)
        offs = np.array([messages[i].offset for i in rows], dtype=np.int64)
        stamps = np.array([_kafka_ms(messages[i]) for i in rows], dtype=np.int64)
        dead_arrays = (
            np.array([messages[i].partition for i in dead], dtype=np.int64),
            np.array([messages[i].offset for i in dead], dtype=np.int64),
            np.array([_kafka_ms(messages[i]) for i in dead], dtype=np.int64),
        )
        judged = report if report is not None else self._empty_report()
        data = frame if report is not None else empty_frame(self.plan.schema_obj.polars_schema)
        conformed = self._conform(data) if self._conform is not None and data.height else data
        now = now_ms()
        before: dict[tuple[str, int], UniqueChanges] = {}
        keys: list[tuple[str, int]] = []
        with self.stream.lock:  # the observer, on the event loop, waits while this batch is accounted
            if waiting:
                before = self.stream.take_changes()
                for p in dict.fromkeys(m.partition for m in messages):  # new partitions in the order one by one
                    if p not in self.stream.states:  # would start them: the order the state records follow
                        self.stream.assign(p, now)
            out = self.stream.process(
                judged, conformed, parts, offs, stamps, now_ms=now, dead=dead_arrays, irregular=irregular
            )
            if self.metrics is not None:
                self._observe(out)
            if waiting:
                keys = [(column, p) for p, state in self.stream.states.items() for column in state.unique]
        waited = [(k, before.get(k)) for k in keys]
        if report is None:
            return None, out, waited
        return amend(report, self.plan, out.valid, out.unique_fails, out.bad_time), out, waited

    def _changelog(self, changes: dict[tuple[str, int], UniqueChanges]) -> list[OutRecord]:
        """The uniqueness changelog records of ``changes`` (claims, then tombstones, per column and partition)."""
        records = []
        c, so = self.plan.contract, self.plan.schema_obj
        for (column, p), change in changes.items():
            for chunk in change.chunks:
                key = changelog_key(c.id, so.name, so.topic, column, p, chunk.key)
                records.append(OutRecord(self.changelog_topic, encode_chunk(chunk), key, partition=self.partition))
            for tomb in change.tombstones:
                key = changelog_key(c.id, so.name, so.topic, column, p, tomb)
                records.append(OutRecord(self.changelog_topic, None, key, partition=self.partition))
        return records

    def _wrote(self, records: list[OutRecord]) -> list[OutRecord]:
        if self.metrics is not None:
            for r in records:
                self.metrics.wrote(self.plan.schema_obj.topic, self._kind(r), r)
        return records

    def _observe(self, out: BatchTime) -> None:
        m, topic = self.metrics, self.plan.schema_obj.topic
        assert m is not None
        m.marked(
            topic,
            late=int(out.marks.late.sum()),
            skewed=int(out.marks.skewed.sum()),
            no_event_time=int(out.bad_time.sum()),
        )
        sizes: dict[str, tuple[int, int]] = {}
        for state in self.stream.states.values():
            for column, u in state.unique.items():
                keys, nbytes = sizes.get(column, (0, 0))
                sizes[column] = (keys + len(u), nbytes + u.nbytes)
        m.uniqueness(topic, sizes)

    def _kind(self, r: OutRecord) -> str:
        if r.topic == self.changelog_topic:
            return "changelog" if r.value is not None else "changelog_tombstone"
        return record_kind(r.value)

    def _empty_report(self) -> ValidationReport:
        if self._empty is None:
            from streams.validation.engine import compile_plan

            plan = compile_plan(self.plan.contract, self.plan.schema_obj.name)
            self._empty = plan.validate(pl.DataFrame(schema=self.plan.schema_obj.polars_schema))
        return self._empty

    def contract_record(self) -> OutRecord | None:
        """The text of the contract version this worker runs, for the stream's merger whichever version it runs
        (None when the contract was not parsed from text)."""
        c = self.plan.contract
        text = c.document.text if c.document is not None else None
        if text is None:
            return None
        return self._record(ContractText(c.id, c.version, c.sha256, c.path or "<contract>", text))

    def _record(self, rec: Partial | Heartbeat | Closed | ContractText) -> OutRecord:
        value = encode(rec)
        return OutRecord(self.state_topic, value, record_key(rec), partition=self.partition)

    async def send(self, transport: Transport, record: OutRecord) -> None:
        """Produce one record of the observer's own (heartbeats, summaries, closed markers, tombstones): never in
        a poll's transaction (exactly-once), whose abort would take it along after the observer counted it sent."""
        if record.topic in (self.state_topic, self.changelog_topic):
            self._wrote([record])
        await transport.send_outside(record)

    # --- restore (on assignment) and the merger ------------------------------------------------

    def restore(self, partition: int, state: Sequence[Message], changelog: Sequence[Message], now_ms: int) -> None:
        """Resume a source partition from the compacted topics' records of this stream."""
        c, so = self.plan.contract, self.plan.schema_obj
        heartbeat, partials, others = None, {}, []
        for key, value in _compacted(state).items():
            rec = decode(value)
            if isinstance(rec, Undecodable):
                log.warning("skipping a stream-time record of %s: %s", so.topic, rec.reason)
            elif isinstance(rec, Heartbeat) and (rec.contract_id, rec.schema, rec.topic, rec.partition) == (
                c.id, so.name, so.topic, partition,
            ):  # fmt: skip
                heartbeat = rec
            elif isinstance(rec, Partial) and rec.partition == partition and _mine(rec.partial, c, so):
                partials[key] = rec.partial
            elif isinstance(rec, Partial) and rec.partition == partition and _stream_of(rec.partial.key, c, so):
                others.append(rec.partial)  # another contract version's: what it counted is not counted again
        chunks: dict[str, list[Chunk]] = {}
        for key, value in _compacted(changelog).items():
            parsed = parse_changelog_key(key)
            if parsed is None or parsed[0][:3] != (c.id, so.name, so.topic) or parsed[0][4] != partition:
                continue
            chunk = decode_chunk(parsed[1], value)
            if isinstance(chunk, str):
                log.warning("skipping a uniqueness changelog record of %s: %s", so.topic, chunk)
                continue
            chunks.setdefault(parsed[0][3], []).append(chunk)
        self.stream.assign(partition, now_ms, heartbeat=heartbeat, partials=partials.values(), chunks=chunks,
                           others=others)  # fmt: skip
        log.info(
            "restored %s[%d]: %d open window partials (and %d of other contract versions), %s uniqueness claims, "
            "counted through offset %d",
            so.topic, partition, len(partials), len(others),
            {k: sum(len(c.hashes) for c in v) for k, v in chunks.items()},
            self.stream.states[partition].counted_through,
        )  # fmt: skip

    def merger(self, state: Sequence[Message]) -> WindowMerger:
        """A merger of this stream fed with the stream-time records read so far."""
        c, so = self.plan.contract, self.plan.schema_obj
        m = WindowMerger(c.id, so.name, so.topic, self.config.lateness_ms, self.config.idle_ms)
        self.feed(m, state)
        return m

    def feed(self, merger: WindowMerger, records: Iterable[Message]) -> None:
        c, so = self.plan.contract, self.plan.schema_obj
        for m in records:
            if m.value is None:
                continue
            rec = decode(m.value)
            if isinstance(rec, Undecodable):
                log.warning("skipping a stream-time record of %s: %s", so.topic, rec.reason)
            elif isinstance(rec, Partial):
                if _stream_of(rec.partial.key, c, so):  # every contract version's: each judged by its own
                    merger.feed(rec)
            elif isinstance(rec, ContractText):
                if rec.contract_id == c.id:
                    merger.feed(rec)
            elif (rec.contract_id, rec.schema, rec.topic) == (c.id, so.name, so.topic):
                merger.feed(rec)


def _joined(old: UniqueChanges | None, new: UniqueChanges | None) -> UniqueChanges:
    """The changes ``old`` then ``new`` of one column and partition, as one call taking both gives them."""
    parts = [c for c in (old, new) if c is not None]
    return UniqueChanges(tuple(k for c in parts for k in c.chunks), tuple(t for c in parts for t in c.tombstones))


def _mine(partial: WindowPartial, c: Contract, so: SchemaObject) -> bool:
    """``partial`` was counted by this contract text: the same version edited (another sha256) is another's."""
    key = partial.key
    return (key.contract_id, key.contract_version, key.schema, key.topic, partial.contract_sha256) == (
        c.id, c.version, so.name, so.topic, c.sha256,
    )  # fmt: skip


def _stream_of(key: Any, c: Contract, so: SchemaObject) -> bool:
    """``key`` is a window of this stream (contract id, schema object, topic), of any contract version."""
    return bool((key.contract_id, key.schema, key.topic) == (c.id, so.name, so.topic))


def _compacted(records: Iterable[Message]) -> dict[bytes, bytes]:
    """The live value of every key (the last one; a tombstone removes the key)."""
    out: dict[bytes, bytes] = {}
    for m in records:
        if m.key is None:
            continue
        if m.value is None:
            out.pop(m.key, None)
        else:
            out[m.key] = m.value
    return out
