"""The quality events of one batch (CloudEvents to ``Settings.events_topic``), built by :class:`Binding`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import TYPE_CHECKING

from streams.events import builders
from streams.events.codec import to_kafka
from streams.events.types import ms_utc
from streams.formats.reasons import Decoded
from streams.pipeline.records import Message, OutRecord
from streams.validation.report import ValidationReport

if TYPE_CHECKING:
    from streams.pipeline.binding import Binding

__all__ = ["batch_events"]

_TIMESTAMP = attrgetter("timestamp_ms")


def batch_events(
    binding: Binding,
    messages: Sequence[Message],
    offsets: dict[int, tuple[int, int]],
    report: ValidationReport | None,
    decoded: Decoded | None,
    counts: dict[str, int],
    seconds: float,
    worker_id: str,
) -> list[OutRecord]:
    """The quality events of a batch: ``batch.summary`` (``STREAMS_BATCH_EVENTS``), a ``rule.violation`` per rule
    that failed (unless a stage judges windows and publishes them per window) and ``schema.drift``.

    ``offsets``: partition -> (first, last offset); ``seconds``: the batch's decode and validation time."""
    every = list(map(_TIMESTAMP, messages))
    stamps: list[int] = [t for t in every if t is not None] if None in every else every  # type: ignore[assignment]
    if stamps and min(stamps) < 0:  # -1 is Kafka's "no timestamp" (a negative one is invalid): as None
        stamps = [t for t in stamps if t >= 0]
    now = datetime.now(UTC)
    # past the year 9999: the last instant a datetime holds, as for window events (it raised: no event of the batch)
    start = ms_utc(min(stamps)) if stamps else now
    end = ms_utc(max(stamps)) if stamps else now
    latency = (now - start).total_seconds() if stamps else seconds
    source = messages[0].topic
    summary = [
        builders.batch_summary(
            binding.contract, binding.schema, report, source_topic=source, offsets=offsets, window_start=start,
            window_end=end, latency_seconds=latency, counts=counts, mode=str(binding.settings.mode),
            worker_id=worker_id,
        ),
    ] if binding.settings.batch_events else []  # fmt: skip
    per_batch = binding.settings.batch_events or not any(s.judges_windows for s in binding.stages)
    events = [
        *summary,
        *(builders.rule_violations(
            binding.contract, binding.schema, report, source_topic=source, offsets=offsets, window_start=start,
            window_end=end, sample_size=binding.settings.failure_case_sample, worker_id=worker_id,
        ) if per_batch else []),
    ]  # fmt: skip
    if decoded is not None and (binding.settings.batch_events or not binding.stages):  # else: one per window
        mismatched = dict(decoded.type_mismatches)
        if report is not None:  # the engine's conformance failures too (int32 overflow, bad timestamp)
            failures = {c.name: c.failures for c in report.checks}
            mismatched |= {col: failures[name] for col, name in binding.dtype_rule.items() if failures.get(name)}
        if decoded.unknown_fields or decoded.missing_fields or mismatched:
            events.append(
                builders.schema_drift(
                    binding.contract, binding.schema, source_topic=source, offsets=offsets, window_start=start,
                    window_end=end, unknown_fields=decoded.unknown_fields,
                    missing_fields=decoded.missing_fields, type_mismatches=mismatched, worker_id=worker_id,
                )
            )  # fmt: skip
    topic = binding.settings.events_topic
    return [OutRecord(topic, value, key, tuple(headers)) for key, value, headers in map(to_kafka, events)]
