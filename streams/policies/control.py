"""``quarantine-stream`` on the workers: a compacted control topic and a routing override stage.

The policy agent writes one record per (contract, schema object, policy) to the control topic
(``STREAMS_POLICY_CONTROL_TOPIC``, compacted) when a ``quarantine-stream`` incident opens, and a
tombstone when it resolves. Each worker reads that topic from the beginning at start (so a worker
started mid-incident quarantines at once) and then follows it; a binding is **engaged** while any
record of its (contract, schema) is. :class:`QuarantineStage`, the last stage of every binding,
marks every decoded row of an engaged binding invalid with the reason ``policy:<name>``, so the
pipeline routes all of it to ``<topic>.quarantine`` (undecodable ones still go to the DLQ; nothing
is forwarded, nothing lost) until the incident resolves. The decision is an event as well: the
agent emits ``policy.action`` (``channel: quarantine``, ``engaged`` / ``released``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import orjson
import polars as pl
from prometheus_client import CollectorRegistry, Gauge

from streams.errors import BrokerError
from streams.kafka.observers import WorkerObserver
from streams.kafka.transport import Transport
from streams.pipeline.records import Message, OutRecord
from streams.validation.report import ValidationReport

if TYPE_CHECKING:
    from streams.observability import Health
    from streams.pipeline.binding import Binding
    from streams.settings import Settings

__all__ = [
    "ControlObserver",
    "ControlState",
    "Engaged",
    "QuarantineStage",
    "control_key",
    "control_record",
    "install_control",
]

log = logging.getLogger(__name__)

#: The reason a quarantined record carries (``errors.rules`` header): ``policy:<policy name>``.
REASON_PREFIX = "policy:"


def control_key(contract: str, schema: str, policy: str) -> bytes:
    return orjson.dumps([contract, schema, policy])


def control_record(
    topic: str, contract: str, schema: str, policy: str, *, engaged: bool, incident: str, since: str
) -> OutRecord:
    """The control record engaging (a JSON value) or releasing (a tombstone) a quarantine."""
    value = orjson.dumps({"engaged": True, "contract": contract, "schema": schema, "policy": policy,
                          "incident": incident, "since": since}) if engaged else None  # fmt: skip
    return OutRecord(topic, value, control_key(contract, schema, policy))


@dataclass
class Engaged:
    """The quarantines in force, by (contract, schema): ``{policy name: incident id}``."""

    by_binding: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One control record (later records of a key replace earlier ones; a tombstone releases)."""
        try:
            contract, schema, policy = orjson.loads(key or b"")
            policies = self.by_binding.setdefault((str(contract), str(schema)), {})
            if value is None:
                policies.pop(str(policy), None)
                return
            body = orjson.loads(value)
            if body.get("engaged"):
                policies[str(policy)] = str(body.get("incident", ""))
            else:
                policies.pop(str(policy), None)
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
            log.warning("skipping a control record that is not one of the policy agent's (key %r)", key)

    def replace(self, other: Engaged) -> None:
        """Take ``other``'s quarantines (a fresh read of the topic), in place: the stages hold this object."""
        self.by_binding = {k: dict(v) for k, v in other.by_binding.items() if v}

    def policies(self, contract: str, schema: str) -> list[str]:
        return sorted(self.by_binding.get((contract, schema), {}))


class QuarantineStage:
    """A binding's last stage: every decoded row of an engaged binding is invalid (reason ``policy:<name>``)."""

    judges_windows = False

    def __init__(self, contract: str, schema: str, engaged: Engaged) -> None:
        self.contract, self.schema, self.engaged = contract, schema, engaged

    def amend(
        self,
        messages: Sequence[Message],
        frame: pl.DataFrame,
        rows: Sequence[int],
        report: ValidationReport | None,
        dead: Sequence[int],
        irregular: Sequence[tuple[int, tuple[str, ...], tuple[str, ...]]] = (),
    ) -> tuple[ValidationReport | None, list[OutRecord]]:
        policies = self.engaged.policies(self.contract, self.schema)
        if report is None or not policies or not report.rows:
            return report, []
        reasons = [REASON_PREFIX + p for p in policies]
        n = report.rows
        gating = report.gating().list.concat(pl.Series([reasons] * n, dtype=pl.List(pl.String)))
        violations = report.violations.list.concat(pl.Series([reasons] * n, dtype=pl.List(pl.String)))
        mask = pl.Series("valid", [False] * n, dtype=pl.Boolean)
        amended = report.replace(valid_mask=mask, violations=violations.alias("violations"), valid_rows=0,
                          invalid_rows=n, gating_violations=gating.alias("violations"))  # fmt: skip
        return amended, []

    def amend_poll(
        self,
        messages: Sequence[Message],
        frame: pl.DataFrame,
        rows: Sequence[int],
        report: ValidationReport | None,
        dead: Sequence[int],
        irregular: Sequence[tuple[int, tuple[str, ...], tuple[str, ...]]] = (),
    ) -> tuple[ValidationReport | None, dict[int, list[OutRecord]]]:
        """As :meth:`amend`, for a poll of several partitions' batches (``PollStage``): the policy is per row, and
        no records. Without it a stream-time binding (whose stages must all be poll stages) ran every stage, the
        stream-time one included, once per partition batch of each poll (issue 13: a slow feed's fixed cost)."""
        amended, _ = self.amend(messages, frame, rows, report, dead, irregular)
        return amended, {}


class ControlState(StrEnum):
    """Where a worker's reading of the control topic stands (``/health`` ``components.policy_control``)."""

    STARTING = "starting"  #: not read yet
    CATCHING_UP = "catching_up"  #: read from the beginning, not yet to its end
    FOLLOWING = "following"  #: read to its end and followed: quarantines are enforced
    UNREADABLE = "unreadable"  #: cannot be read (missing, unauthorized, broker down): retried with backoff


class ControlObserver(WorkerObserver):
    """Reads the control topic from its beginning, then follows it until the worker stops, never giving up.

    The reading runs in a background task: when the topic cannot be read (not created yet, unauthorized,
    broker down) it is tried again after ``backoff`` seconds, doubling up to ``max_backoff``; every
    ``refresh_s`` seconds of following, partitions added to the topic are read too. ``on_start`` waits
    at most ``catch_up_s`` for the first catch-up (so a worker started mid-incident quarantines at once),
    then lets the worker forward while the reading goes on (availability; docs/policies.md). The state
    is logged once per change, in ``/health`` (a component, which does not fail the check) and in
    ``qstreams_policy_control_following{topic}``. ``sleep`` and ``clock`` are injectable for tests.
    """

    def __init__(
        self, consumer_factory: Any, topic: str, engaged: Engaged, *, catch_up_s: float = 15.0,
        prepare: Callable[[], Awaitable[None]] | None = None, backoff: float = 1.0, max_backoff: float = 30.0,
        refresh_s: float = 60.0, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic, registry: CollectorRegistry | None = None,
    ) -> None:  # fmt: skip
        self.factory, self.topic, self.engaged, self.catch_up_s = consumer_factory, topic, engaged, catch_up_s
        self.prepare, self.backoff, self.max_backoff, self.refresh_s = prepare, backoff, max_backoff, refresh_s
        self.sleep, self.clock = sleep, clock
        self.state, self.reason = ControlState.STARTING, ""
        self.attempts = 0  # sessions started (the first read and every retry)
        self.caught_up = asyncio.Event()  # set on every catch-up (cleared when reading fails)
        self.health: Health | None = None
        self.gauge = None if registry is None else Gauge(
            "qstreams_policy_control_following", "1 while the quarantine control topic is read to its end and "
            "followed, else 0 (quarantine-stream is not enforced).", ["topic"], registry=registry)  # fmt: skip
        self._task: asyncio.Task[None] | None = None
        self._consumer: Any = None
        self._set_gauge()

    def on_health(self, health: Health) -> None:
        self.health = health
        self._publish()

    async def on_start(self, transport: Transport) -> None:
        self._task = asyncio.create_task(self._run())
        waiter = asyncio.ensure_future(self.caught_up.wait())
        await asyncio.wait([waiter], timeout=self.catch_up_s)  # not wait_for: on 3.11 it can swallow a cancel
        if not waiter.done():
            waiter.cancel()
            log.error("the control topic %s is not read to its end after %.0f s (%s%s): the worker forwards "
                      "while it keeps reading; quarantine-stream is not enforced until then", self.topic,
                      self.catch_up_s, self.state, f": {self.reason}" if self.reason else "")  # fmt: skip

    async def _run(self) -> None:
        delay = self.backoff
        while True:
            self.attempts += 1
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the worker runs without quarantine control rather than not at all
                reason = f"{type(exc).__name__}: {exc}"[:300]
                self._set_state(ControlState.UNREADABLE, reason)
            finally:
                await self._close()
            if self.state is ControlState.FOLLOWING or self.caught_up.is_set():
                delay = self.backoff
            self.caught_up.clear()
            await self.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    async def _session(self) -> None:
        """Read the topic from its beginning to its end, then follow it (returns only by raising)."""
        if self.prepare is not None:
            await self.prepare()
        self._consumer = consumer = self.factory()
        await consumer.start()
        tps = await self._partitions(consumer)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        if self.state is ControlState.STARTING:  # a retry stays unreadable (its last failure) until caught up
            self._set_state(ControlState.CATCHING_UP, "")
        fresh = Engaged()  # from scratch: a release whose tombstone was compacted away while unreadable holds
        ends = await consumer.end_offsets(tps)
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            await self._poll(consumer, 200, fresh)
        self.engaged.replace(fresh)
        self._set_state(ControlState.FOLLOWING, "")
        self.caught_up.set()
        refresh_at = self.clock() + self.refresh_s
        while True:
            await self._poll(consumer, 500, self.engaged)
            if self.clock() >= refresh_at:
                tps = await self._add_partitions(consumer, tps)
                refresh_at = self.clock() + self.refresh_s

    async def _partitions(self, consumer: Any) -> list[Any]:
        from aiokafka import TopicPartition

        cluster = await consumer._client.fetch_all_metadata()  # does not auto-create the topic
        parts = cluster.partitions_for_topic(self.topic)
        if not parts:
            raise BrokerError(f"the control topic {self.topic} does not exist or this worker may not describe "
                              "it; the policy agent (or STREAMS_CREATE_TOPICS) creates it")  # fmt: skip
        return [TopicPartition(self.topic, p) for p in sorted(parts)]

    async def _add_partitions(self, consumer: Any, tps: list[Any]) -> list[Any]:
        """Read partitions added to the topic since the last look, from their beginning."""
        added = [tp for tp in await self._partitions(consumer) if tp not in tps]
        if not added:
            return tps
        positions = {tp: await consumer.position(tp) for tp in tps}
        consumer.assign([*tps, *added])  # assign() forgets the positions: seek the known ones back
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        await consumer.seek_to_beginning(*added)
        log.info("control topic %s: reading new partitions %s", self.topic, sorted(tp.partition for tp in added))
        return [*tps, *added]

    async def _poll(self, consumer: Any, timeout_ms: int, engaged: Engaged) -> None:
        batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=1000)
        for records in batches.values():
            for r in records:
                before = engaged.policies(*_binding(r.key))
                engaged.apply(r.key, r.value)
                after = engaged.policies(*_binding(r.key))
                if before != after and engaged is self.engaged:
                    log.warning("quarantine-stream of %s: policies %s engaged", _binding(r.key), after or "none")

    def _set_state(self, state: ControlState, reason: str) -> None:
        changed = state is not self.state
        self.state, self.reason = state, reason
        if changed:  # once per change, not per retry
            if state is ControlState.UNREADABLE:
                log.error("cannot read the control topic %s (%s): quarantine-stream is not enforced; retrying "
                          "with backoff up to %.0f s", self.topic, reason, self.max_backoff)  # fmt: skip
            elif state is ControlState.FOLLOWING:
                log.info("control topic %s read: engaged %s", self.topic, dict(self.engaged.by_binding))
            else:
                log.info("control topic %s: %s", self.topic, state)
        self._set_gauge()
        self._publish()

    def _set_gauge(self) -> None:
        if self.gauge is not None:
            self.gauge.labels(self.topic).set(1 if self.state is ControlState.FOLLOWING else 0)

    def _publish(self) -> None:
        if self.health is not None:
            detail = {"topic": self.topic, "state": str(self.state), "enforced": self.state is ControlState.FOLLOWING}
            if self.reason:
                detail["reason"] = self.reason
            self.health.components["policy_control"] = detail

    async def _close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def on_stopping(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._close()


def _binding(key: bytes | None) -> tuple[str, str]:
    try:
        contract, schema, _ = orjson.loads(key or b"")
        return str(contract), str(schema)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return "?", "?"


def install_control(
    bindings: Sequence[Binding], consumer_factory: Any, topic: str, *,
    prepare: Callable[[], Awaitable[None]] | None = None, registry: CollectorRegistry | None = None,
    settings: Settings | None = None,
) -> ControlObserver:  # fmt: skip
    """Append a :class:`QuarantineStage` to every binding (after the stream-time stage) and return the observer
    (its gauge in ``registry``, the worker's metrics, when given; its waits from ``settings``' ``control_*``,
    the defaults without)."""
    from streams.settings import Settings

    s = settings if settings is not None else Settings.model_construct()
    engaged = Engaged()
    for b in bindings:
        b.stages.append(QuarantineStage(b.contract.id, b.schema.name, engaged))
    return ControlObserver(
        consumer_factory, topic, engaged, prepare=prepare, registry=registry, catch_up_s=s.control_catch_up_s,
        backoff=s.control_backoff_s, max_backoff=s.control_max_backoff_s, refresh_s=s.control_refresh_s,
    )  # fmt: skip
