"""The ``io.qualitystreams.window.summary.v1`` event: the final verdict on one event-time window.

Built from a :class:`~streams.windows.finalize.WindowVerdict` (the merge of every
partition's and worker's partials of the window). Conventions as in
:mod:`streams.events.builders`: data is JSON-native, times are ISO-8601 UTC with
``Z``, the Kafka key is the contract id, and the ``id`` is deterministic per
(contract version, schema object, source topic, window), so a summary published
again (a new owner after a crash) de-duplicates on the consumer side.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from cloudevents.core.v1.event import CloudEvent

from streams.events.types import (
    EventSeverity,
    EventType,
    context_attributes,
    event_id,
    iso_utc,
    json_number,
    ms_utc,
    source_urn,
)

if TYPE_CHECKING:
    from streams.contracts.model import Contract
    from streams.windows.finalize import WindowCheck, WindowVerdict

__all__ = ["window_summary", "window_summary_id", "window_violations"]


def window_summary_id(contract: Contract, schema: str, topic: str, start_ms: int, end_ms: int) -> str:
    """The deterministic id of a window's summary."""
    return event_id(str(EventType.WINDOW_SUMMARY), contract.ref, contract.sha256, schema, topic, start_ms, end_ms)


def _check_dict(check: WindowCheck) -> dict[str, Any]:
    r = check.result
    return {
        "name": r.name,
        "column": r.column,
        "check": r.check,
        "severity": str(r.severity),
        "failures": int(r.failures),
        "failure_rate": json_number(r.failure_rate),
        "passed": bool(r.passed),
        "value": json_number(r.value),
        "threshold": str(r.threshold),
        "dimension": r.dimension,
        "error": r.error,
        "evaluation": str(check.evaluation),
        "first_offending": [{"partition": int(p), "offset": int(o)} for p, o in check.evidence],
    }


#: the parts of a check dict that a window ``rule.violation`` carries as its ``rule``, and beside it
_RULE_KEYS = ("name", "column", "check", "severity", "dimension", "threshold")
_OUTCOME_KEYS = ("failures", "failure_rate", "value", "error", "evaluation", "first_offending")


def _partitions(verdict: WindowVerdict) -> list[dict[str, int]]:
    return [
        {"partition": int(p), "first": int(ranges[0][0]), "last": int(ranges[-1][1])}
        for p, ranges in sorted(verdict.offsets.items())
        if ranges
    ]


def _bounds(contract: Contract, verdict: WindowVerdict) -> tuple[datetime, datetime]:
    k = verdict.key
    if (k.contract_id, k.contract_version, verdict.contract_sha256) != (contract.id, contract.version, contract.sha256):
        raise ValueError(f"verdict of {k.contract_id}@{k.contract_version} is not for contract {contract.ref}")
    start, end = (ms_utc(ms) for ms in (k.start_ms, k.end_ms))
    return start, end


def _freshness(verdict: WindowVerdict) -> dict[str, Any]:
    """The window's newest event time, when it was judged (wall clock) and the difference (null: unknown)."""

    def iso(ms: int | None) -> str | None:
        return None if ms is None else iso_utc(ms_utc(ms))

    return {
        "newest_event_time": iso(verdict.newest_event_ms),
        "closed_at": iso(verdict.closed_ms),
        "freshness_seconds": json_number(verdict.freshness_seconds),
    }


def window_violations(contract: Contract, verdict: WindowVerdict, *, worker_id: str) -> list[CloudEvent]:
    """One ``rule.violation`` event (scope ``window``) per rule that failed in a finalized window.

    Once per rule per window: the id is deterministic per (contract version, schema, topic,
    window, rule). The data is the window's verdict on the rule and its first offending
    records as (partition, offset); ``sample`` is empty (the failure cases stay in the
    quarantine topic, where the offsets point).
    """
    k = verdict.key
    start, end = _bounds(contract, verdict)
    rules = {r.name: r for so in contract.schemas if so.name == k.schema for r in so.rules}
    common = {
        "contract": {"id": contract.id, "version": contract.version, "sha256": contract.sha256},
        "schema": k.schema,
        "topic": k.topic,
        "worker_id": worker_id,
        "offsets": _partitions(verdict),
        "window": {"start": iso_utc(start), "end": iso_utc(end)},
        "owner": contract.owner.as_dict(),
        "scope": "window",
    }
    events = []
    for check in verdict.checks:
        r = check.result
        if r.passed:
            continue
        rule = rules.get(r.name)
        verdict_on_rule = _check_dict(check)  # the summary's check, as the summary carries it
        data = common | {
            "rule": {key: verdict_on_rule[key] for key in _RULE_KEYS}
            | {"description": rule.description if rule is not None else None},
            **{key: verdict_on_rule[key] for key in _OUTCOME_KEYS},
            "rows": verdict.rows,
            "sample": [],
        }
        eid = event_id(str(EventType.RULE_VIOLATION), contract.ref, contract.sha256, k.schema, k.topic,
                       k.start_ms, k.end_ms, r.name)  # fmt: skip
        attributes = context_attributes(
            EventType.RULE_VIOLATION, eid, source=source_urn("topic", k.topic), subject=k.topic, time=end,
            contract=contract, severity=EventSeverity(str(r.severity)), rule=r.name,
        )  # fmt: skip
        events.append(CloudEvent(attributes, data))
    return events


def window_summary(contract: Contract, verdict: WindowVerdict, *, worker_id: str) -> CloudEvent:
    """One ``window.summary`` event for a finalized window.

    ``severity`` is the highest severity among the checks that failed (``ok`` when none did).
    """
    k = verdict.key
    start, end = _bounds(contract, verdict)
    partitions = _partitions(verdict)
    data = {
        "contract": {"id": contract.id, "version": contract.version, "sha256": contract.sha256},
        "schema": k.schema,
        "topic": k.topic,
        "window": {"start": iso_utc(start), "end": iso_utc(end)},
        "records": verdict.records,
        "rows": verdict.rows,
        "valid": verdict.valid,
        "quarantined": verdict.quarantined,
        "dead_lettered": verdict.dead_lettered,
        "late": verdict.late,
        "skewed": verdict.skewed,
        "passed": verdict.passed,
        "checks": [_check_dict(c) for c in verdict.checks],
        "owner": contract.owner.as_dict(),
        "partitions": partitions,
        "finalized_by": worker_id,
        "schema_drifted": verdict.schema_drift is not None,  # a schema.drift event of the window follows
        **_freshness(verdict),
    }
    if verdict.unjudged is not None:  # the version that counted the records could not be loaded: counts only
        data["unjudged"] = verdict.unjudged
    if verdict.contract_versions:  # every text the window is published for (one summary each): for pooling them
        data["contract_versions"] = [{"version": v, "sha256": sha} for v, sha in verdict.contract_versions]
    severity = EventSeverity.highest(str(c.result.severity) for c in verdict.checks if not c.result.passed)
    eid = window_summary_id(contract, k.schema, k.topic, k.start_ms, k.end_ms)
    attributes = context_attributes(
        EventType.WINDOW_SUMMARY, eid, source=source_urn("topic", k.topic), subject=k.topic, time=end,
        contract=contract, severity=severity,
    )  # fmt: skip
    return CloudEvent(attributes, data)
