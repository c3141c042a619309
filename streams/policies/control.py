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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import polars as pl

from streams.kafka.observers import WorkerObserver
from streams.kafka.transport import Transport
from streams.pipeline.records import Message, OutRecord
from streams.validation.report import ValidationReport

if TYPE_CHECKING:
    from streams.pipeline.binding import Binding

__all__ = ["ControlObserver", "Engaged", "QuarantineStage", "control_key", "control_record", "install_control"]

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


class ControlObserver(WorkerObserver):
    """Reads the control topic to its end when the worker starts, then follows it until the worker stops."""

    def __init__(
        self, consumer_factory: Any, topic: str, engaged: Engaged, *, catch_up_s: float = 15.0,
        prepare: Callable[[], Awaitable[None]] | None = None,
    ) -> None:  # fmt: skip
        self.factory, self.topic, self.engaged, self.catch_up_s = consumer_factory, topic, engaged, catch_up_s
        self.prepare = prepare
        self._task: asyncio.Task[None] | None = None
        self._consumer: Any = None

    async def on_start(self, transport: Transport) -> None:
        from aiokafka import TopicPartition

        try:
            if self.prepare is not None:
                await self.prepare()
            self._consumer = consumer = self.factory()
            await consumer.start()
            cluster = await consumer._client.fetch_all_metadata()  # does not auto-create the topic
            parts = cluster.partitions_for_topic(self.topic) or {0}
            tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            async with asyncio.timeout(self.catch_up_s):  # not wait_for: on 3.11 it can swallow a cancellation
                ends = await consumer.end_offsets(tps)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.catch_up_s
            while loop.time() < deadline:
                behind = [tp for tp in tps if await consumer.position(tp) < ends[tp]]
                if not behind:
                    break
                await self._poll(consumer, 200)
        except Exception:  # the worker runs without quarantine control rather than not at all
            log.exception("cannot read the control topic %s: quarantine-stream is not followed", self.topic)
            return
        log.info("control topic %s read: engaged %s", self.topic, dict(self.engaged.by_binding))
        self._task = asyncio.create_task(self._follow(consumer))

    async def _poll(self, consumer: Any, timeout_ms: int) -> None:
        batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=1000)
        for records in batches.values():
            for r in records:
                before = self.engaged.policies(*_binding(r.key))
                self.engaged.apply(r.key, r.value)
                after = self.engaged.policies(*_binding(r.key))
                if before != after:
                    log.warning("quarantine-stream of %s: policies %s engaged", _binding(r.key), after or "none")

    async def _follow(self, consumer: Any) -> None:
        while True:
            try:
                await self._poll(consumer, 500)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading the control topic %s failed; retrying", self.topic)
                await asyncio.sleep(1.0)

    async def on_stopping(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()


def _binding(key: bytes | None) -> tuple[str, str]:
    try:
        contract, schema, _ = orjson.loads(key or b"")
        return str(contract), str(schema)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return "?", "?"


def install_control(
    bindings: Sequence[Binding], consumer_factory: Any, topic: str, *,
    prepare: Callable[[], Awaitable[None]] | None = None,
) -> ControlObserver:  # fmt: skip
    """Append a :class:`QuarantineStage` to every binding (after the stream-time stage) and return the observer."""
    engaged = Engaged()
    for b in bindings:
        b.stages.append(QuarantineStage(b.contract.id, b.schema.name, engaged))
    return ControlObserver(consumer_factory, topic, engaged, prepare=prepare)
