"""Builders of quality events: plain functions from a validated batch to CloudEvents.

Every builder returns :class:`cloudevents.core.v1.event.CloudEvent` objects
(CloudEvents 1.0) whose data is a JSON-native ``dict`` (datetimes already
rendered as ISO-8601 UTC strings) that validates against the type's JSON
Schema. Put them on Kafka with :func:`streams.events.codec.to_kafka`.

**Deterministic ids.** A batch event's ``id`` hashes the event type, the
contract (``id@version``, sha256), the schema object, the source topic and the
sorted offset ranges (plus the rule for a violation): re-emitting the same
batch after a crash yields the same ids, and consumers de-duplicate by ``id``
(see ``docs/events.md``, "De-duplication"). Lifecycle ids make each start, stop
and rebalance distinct.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from cloudevents.core.v1.event import CloudEvent

from streams.errors import EventError
from streams.events.types import (
    MAX_CASE_CHARS,
    EventSeverity,
    EventType,
    LifecyclePhase,
    Offsets,
    context_attributes,
    cut_text,
    event_id,
    field_name,
    iso_utc,
    json_number,
    offset_ranges,
    source_urn,
    to_utc,
)

if TYPE_CHECKING:
    from streams.contracts.model import Contract, Rule, SchemaObject
    from streams.validation.report import CheckResult, ValidationReport

__all__ = ["REDACTED", "batch_summary", "lifecycle", "rule_violations", "schema_drift"]

#: What a sample shows instead of a value of a classified (restricted, confidential, PII) column.
REDACTED = "[REDACTED]"

#: The failure-case fields a violation sample carries (any other column is dropped).
SAMPLE_FIELDS = ("failure_case", "schema_context", "column", "check", "check_number", "index", "rule")
_COUNT_KEYS = ("valid", "quarantined", "dead_lettered")

# --------------------------------------------------------------------------- helpers


def _contract_ref(contract: Contract) -> dict[str, str]:
    return {"id": contract.id, "version": contract.version, "sha256": contract.sha256}


@dataclass(frozen=True, slots=True)
class _Batch:
    """What identifies one batch: the contract and schema object that judged it and its records."""

    contract: Contract
    schema_obj: SchemaObject
    topic: str
    offsets: Offsets
    start: datetime
    end: datetime
    worker_id: str

    def data(self) -> dict[str, Any]:
        """The data fields every batch event carries."""
        if to_utc(self.end) < to_utc(self.start):
            raise EventError(
                f"The batch window ends before it starts: window_end {self.end.isoformat()} is before window_start "
                f"{self.start.isoformat()} (start and end swapped?)."
            )
        return {
            "contract": _contract_ref(self.contract),
            "schema": self.schema_obj.name,
            "topic": self.topic,
            "worker_id": self.worker_id,
            "offsets": offset_ranges(self.offsets),
            "window": {"start": iso_utc(self.start), "end": iso_utc(self.end)},
            "owner": self.contract.owner.as_dict(),
        }

    def event(
        self, event_type: EventType, data: dict[str, Any], severity: EventSeverity, rule: str | None = None
    ) -> CloudEvent:
        """The event of this batch, its id derived from the batch (and rule) only."""
        ranges = [[int(p), int(first), int(last)] for p, (first, last) in sorted(self.offsets.items())]
        c = self.contract
        eid = event_id(
            str(event_type), c.ref, c.sha256, self.schema_obj.name, self.topic, ranges, *([rule] if rule else [])
        )
        attributes = context_attributes(
            event_type, eid, source=source_urn("topic", self.topic), subject=self.topic, time=self.end,
            contract=c, severity=severity, rule=rule,
        )  # fmt: skip
        return CloudEvent(attributes, data)

    def check(self, report: ValidationReport) -> None:
        """Refuse a report of another contract version or schema object (its events would lie)."""
        c = self.contract
        mine = (c.id, c.version, c.sha256, self.schema_obj.name)
        theirs = (report.contract_id, report.contract_version, report.contract_sha256, report.schema)
        if mine != theirs:
            raise EventError(
                f"The report of {theirs} does not match contract/schema {mine}: it was produced for another "
                "contract version or schema object."
            )


def _rule_dict(check: CheckResult) -> dict[str, Any]:
    """One rule's outcome in a batch summary."""
    return {
        "name": check.name,
        "column": check.column,
        "check": check.check,
        "severity": str(check.severity),
        "failures": int(check.failures),
        "failure_rate": json_number(check.failure_rate),
        "passed": bool(check.passed),
        "value": json_number(check.value),
        "threshold": str(check.threshold),
        "dimension": check.dimension,
        "error": getattr(check, "error", None),
    }


# --------------------------------------------------------------------------- batch summary


def batch_summary(
    contract: Contract,
    schema_obj: SchemaObject,
    report: ValidationReport | None,
    *,
    source_topic: str,
    offsets: Offsets,
    window_start: datetime,
    window_end: datetime,
    latency_seconds: float,
    counts: Mapping[str, int],
    mode: str,
    worker_id: str,
) -> CloudEvent:
    """One ``batch.summary`` event per validated batch: counts, per-rule outcomes, offsets and latency.

    ``report`` is None when no record of the batch could be decoded (all
    dead-lettered). ``counts`` has the keys ``valid``, ``quarantined`` and
    ``dead_lettered`` (missing keys count 0). The ``severity`` attribute is the
    highest severity of the rules that failed their threshold (``ok`` when none
    did), and ``error`` when records were dead-lettered and none could be validated.
    """
    batch = _Batch(contract, schema_obj, source_topic, offsets, window_start, window_end, worker_id)
    unknown = set(counts) - set(_COUNT_KEYS)
    if unknown:
        raise EventError(
            f"The batch counts have unknown count keys {sorted(unknown)}; expected some of {list(_COUNT_KEYS)}."
        )
    count_data = {k: int(counts.get(k, 0)) for k in _COUNT_KEYS}
    if report is not None:
        batch.check(report)
    checks = tuple(report.checks) if report is not None else ()
    rows = int(report.rows) if report is not None else 0
    severity = EventSeverity.highest(str(c.severity) for c in checks if not c.passed)
    if rows == 0 and count_data["dead_lettered"] > 0:
        severity = EventSeverity.ERROR
    data = batch.data() | {
        "mode": str(mode),
        "counts": count_data,
        "rows": rows,
        "passed": bool(report.passed) if report is not None else None,
        "rules": [_rule_dict(c) for c in checks],
        "latency_seconds": json_number(max(float(latency_seconds), 0.0)),
    }
    return batch.event(EventType.BATCH_SUMMARY, data, severity)


# --------------------------------------------------------------------------- rule violations


def _frame_case(value: str, check: CheckResult, metric: bool, redacted: frozenset[str]) -> str:
    """A frame-level failure case with classified values hidden.

    A JSON object (the failing row of a multi-column rule) keeps its keys and
    loses the values of classified columns; a batch metric's number is kept;
    anything else is hidden when it, or the rule's check, names a classified column.
    """
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        return orjson.dumps({k: REDACTED if k in redacted else v for k, v in parsed.items()}).decode()
    if metric and isinstance(parsed, int | float) and not isinstance(parsed, bool):
        return value
    names_one = any(name in value or name in check.check for name in redacted)
    return REDACTED if names_one else value


def _sample(
    report: ValidationReport, check: CheckResult, rule: Rule | None, redacted: frozenset[str], size: int
) -> list[dict[str, Any]]:
    """The first ``size`` failure cases of one rule, with every classified value replaced by ``[REDACTED]``.

    The report redacts already; this is the second line of defence, by column
    against the schema object (see :func:`_frame_case` for cases without a
    column). Failure-case columns other than :data:`SAMPLE_FIELDS` are dropped.
    """
    if size <= 0:
        return []
    cases = report.case_records(check.name, size)  # only these cases are rendered (and listed without a frame)
    rule_redacted = bool({check.column, rule.column if rule is not None else None} & redacted)
    metric = rule is not None and rule.is_batch_metric
    sample = []
    for row in cases:
        record = {name: row.get(name) for name in SAMPLE_FIELDS}
        value, column = record["failure_case"], record["column"]
        if value is None:
            pass
        elif rule_redacted or column in redacted:
            record["failure_case"] = REDACTED
        elif column is None and redacted:
            record["failure_case"] = cut_text(_frame_case(str(value), check, metric, redacted), MAX_CASE_CHARS)
        else:
            record["failure_case"] = cut_text(str(value), MAX_CASE_CHARS)
        sample.append(record)
    return sample


def rule_violations(
    contract: Contract,
    schema_obj: SchemaObject,
    report: ValidationReport | None,
    *,
    source_topic: str,
    offsets: Offsets,
    window_start: datetime,
    window_end: datetime,
    sample_size: int,
    worker_id: str,
) -> list[CloudEvent]:
    """One ``rule.violation`` event per rule that failed its threshold in this batch (any severity).

    Each event names the rule and its owner, the batch (topic, offsets, window)
    and carries up to ``sample_size`` of the rule's failure cases, classified
    values redacted. Returns ``[]`` when every rule passed or ``report`` is None.
    """
    if report is None:
        return []
    batch = _Batch(contract, schema_obj, source_topic, offsets, window_start, window_end, worker_id)
    batch.check(report)
    rules = {r.name: r for r in schema_obj.rules}
    common = batch.data()
    events = []
    for check in report.checks:
        if check.passed:
            continue
        rule = rules.get(check.name)
        outcome = _rule_dict(check)
        data = common | {
            "scope": "batch",
            "rule": {k: outcome[k] for k in ("name", "column", "check", "severity", "dimension", "threshold")}
            | {"description": rule.description if rule is not None else None},
            "failures": outcome["failures"],
            "failure_rate": outcome["failure_rate"],
            "value": outcome["value"],
            "rows": int(report.rows),
            "error": outcome["error"],
            "sample": _sample(report, check, rule, schema_obj.redacted_columns, sample_size),
        }
        severity = EventSeverity(str(check.severity))
        events.append(batch.event(EventType.RULE_VIOLATION, data, severity, rule=check.name))
    return events


# --------------------------------------------------------------------------- schema drift


def _field_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """``{field: records}`` sorted by field, zero counts dropped, negative counts refused, long names cut
    (:func:`~streams.events.types.field_name`; names cut alike add up)."""
    out: dict[str, int] = {}
    for name, n in counts.items():
        if n < 0:
            raise EventError(f"A field count cannot be negative: negative record count {n} for field {name!r}.")
        if n > 0:
            key = field_name(str(name))
            out[key] = out.get(key, 0) + int(n)
    return dict(sorted(out.items()))


def schema_drift(
    contract: Contract,
    schema_obj: SchemaObject,
    *,
    source_topic: str,
    offsets: Offsets,
    window_start: datetime,
    window_end: datetime,
    unknown_fields: Mapping[str, int],
    missing_fields: Mapping[str, int],
    type_mismatches: Mapping[str, int],
    worker_id: str,
) -> CloudEvent:
    """A ``schema.drift`` event: per field, how many records of the batch drifted from the schema object.

    ``unknown_fields``: fields the records carry that the schema does not
    declare; ``missing_fields``: declared fields absent from records;
    ``type_mismatches``: declared fields whose values do not have the declared
    type. The data carries them as ``{field: records}`` maps (zero counts left
    out), plus ``missing_required`` (the missing fields the schema requires) and
    ``expected_types`` (declared logical type of each mismatched field).
    Severity: ``error`` for type mismatches or missing required fields,
    ``warning`` for unknown fields, ``info`` for missing optional fields, else ``ok``.
    """
    batch = _Batch(contract, schema_obj, source_topic, offsets, window_start, window_end, worker_id)
    declared = {f.name: f for f in schema_obj.fields}
    unknown, missing, mismatched = (_field_counts(m) for m in (unknown_fields, missing_fields, type_mismatches))
    missing_required = [f for f in missing if f in declared and declared[f].required]
    if mismatched or missing_required:
        severity = EventSeverity.ERROR
    elif unknown:
        severity = EventSeverity.WARNING
    else:
        severity = EventSeverity.INFO if missing else EventSeverity.OK
    data = batch.data() | {
        "scope": "batch",
        "unknown_fields": unknown,
        "missing_fields": missing,
        "type_mismatches": mismatched,
        "missing_required": missing_required,
        "expected_types": {f: declared[f].logical_type for f in mismatched if f in declared},
    }
    return batch.event(EventType.SCHEMA_DRIFT, data, severity)


# --------------------------------------------------------------------------- worker lifecycle


def lifecycle(
    phase: str,
    *,
    worker_id: str,
    app_id: str,
    mode: str,
    contracts: Sequence[Contract],
    partitions: Sequence[tuple[str, int]] = (),
    reason: str | None = None,
    started_at: datetime | None = None,
    generation: int | None = None,
) -> CloudEvent:
    """A ``worker.lifecycle`` event: a worker started, stopped, got or lost partitions, or failed to bind.

    ``phase`` is one of :class:`~streams.events.types.LifecyclePhase`;
    ``partitions`` are ``(topic, partition)`` pairs; ``reason`` explains a stop
    or a ``binding_failed``. Pass the worker's ``started_at`` (one value for the
    life of the process) and, for assignments, the consumer group ``generation``:
    both go into the id, so each start, stop and rebalance is a distinct event.
    For ``started``/``stopped`` without ``started_at`` the event time is used.
    Subject and contract attributes are set when the worker enforces exactly one contract.
    """
    step = LifecyclePhase(phase)
    now = datetime.now(UTC)
    if started_at is None and step in (LifecyclePhase.STARTED, LifecyclePhase.STOPPED):
        started_at = now
    refs = sorted(contracts, key=lambda c: (c.id, c.version))
    parts = sorted((str(t), int(p)) for t, p in partitions)
    started = iso_utc(started_at) if started_at is not None else None
    data = {
        "phase": str(step),
        "worker_id": worker_id,
        "app_id": app_id,
        "mode": str(mode),
        "contracts": [
            _contract_ref(c)
            | {"name": c.name, "schemas": [{"name": s.name, "topic": s.topic} for s in c.schemas]}
            | {"owner": c.owner.as_dict()}
            for c in refs
        ],
        "partitions": [{"topic": t, "partition": p} for t, p in parts],
        "reason": reason,
        "started_at": started,
        "generation": int(generation) if generation is not None else None,
    }
    event_type = EventType.WORKER_LIFECYCLE
    eid = event_id(
        str(event_type), str(step), worker_id, app_id, [[c.ref, c.sha256] for c in refs],
        [list(p) for p in parts], reason, data["generation"], started,
    )  # fmt: skip
    only = refs[0] if len(refs) == 1 else None
    severity = EventSeverity.ERROR if step is LifecyclePhase.BINDING_FAILED else EventSeverity.INFO
    attributes = context_attributes(
        event_type, eid, source=source_urn("worker", worker_id), subject=only.id if only is not None else None,
        time=now, contract=only, severity=severity,
    )  # fmt: skip
    return CloudEvent(attributes, data)
