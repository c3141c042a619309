"""Per-window drift events: ``distribution.drift`` and ``prediction.confidence`` from a window's verdict.

Built from the :class:`~streams.windows.finalize.WindowDrift` of a finalized window (the merge of
every partition's and worker's window profiles, judged against the contract's reference), with the
conventions of ``window.summary`` (:mod:`streams.events.window`): times ISO-8601 UTC with ``Z``, the
Kafka key is the contract id, and ids are deterministic per (contract version, schema object, source
topic, window) — plus the ``model_version`` for confidence events — so a window published again (a
new owner after a crash) de-duplicates on the consumer side.

* one ``io.qualitystreams.distribution.drift.v1`` per window of a binding with a reference, whatever
  its verdicts: severity ``warning`` when a field drifted, ``info`` when no field had enough values to
  be judged (``insufficient_data``: no verdict, never an alarm), else ``ok``;
* one ``io.qualitystreams.schema.drift.v1`` per window whose records drifted from the schema object
  (undeclared fields, declared fields missing, values of another type), with counts and the first
  offending offsets per field (the per-batch form's fields, plus ``records``, ``never_present`` and
  ``first_offending``);
* one ``io.qualitystreams.prediction.confidence.v1`` per window and ``model_version`` seen in it, for a
  prediction contract: ``warning`` on drift, ``info`` for a version new to the reference (its first
  windows) or too few predictions, else ``ok``; its ``confidence_distribution`` (score and confidence
  quantiles, a compact confidence histogram) is read from the window's merged score histogram.

``io.qualitystreams.model.performance.v1`` (realized performance, once labels arrive) is published by the
labels joiner, ``qstreams performance run`` (:mod:`streams.events.performance`); the estimated accuracy
without labels (CBPE) travels in the confidence event as ``expected_accuracy``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from cloudevents.core.v1.event import CloudEvent

from streams.events.types import (
    EventSeverity,
    EventType,
    context_attributes,
    event_id,
    field_name,
    iso_utc,
    ms_utc,
    source_urn,
)
from streams.profiles.drift import Verdict
from streams.profiles.evidence import confidence_data, drift_data

if TYPE_CHECKING:
    from streams.contracts.model import Contract
    from streams.windows.finalize import WindowVerdict
    from streams.windows.partial import FieldTally

__all__ = [
    "distribution_drift",
    "drift_event_id",
    "prediction_confidence",
    "window_drift_events",
    "window_schema_drift",
]


def drift_event_id(
    event_type: EventType, contract: Contract, schema: str, topic: str, start_ms: int, end_ms: int, *extra: str
) -> str:
    """The deterministic id of a window's drift or confidence event."""
    return event_id(str(event_type), contract.ref, contract.sha256, schema, topic, start_ms, end_ms, *extra)


def _window(verdict: WindowVerdict) -> tuple[datetime, datetime]:
    k = verdict.key
    start, end = (ms_utc(ms) for ms in (k.start_ms, k.end_ms))
    return start, end


def _offsets(verdict: WindowVerdict) -> list[dict[str, int]]:
    """The smallest and largest offset of the window's records per source partition (the summary's ``partitions``)."""
    return [
        {"partition": int(p), "first": int(r[0][0]), "last": int(r[-1][1])}
        for p, r in sorted(verdict.offsets.items())
        if r
    ]


def _about(contract: Contract, verdict: WindowVerdict) -> dict[str, object]:
    """What every window event says besides its verdict: its scope, whom to call, which records."""
    return {"scope": "window", "owner": contract.owner.as_dict(), "offsets": _offsets(verdict)}


def _checked(contract: Contract, verdict: WindowVerdict) -> None:
    k = verdict.key
    if (k.contract_id, k.contract_version, verdict.contract_sha256) != (contract.id, contract.version, contract.sha256):
        raise ValueError(f"verdict of {k.contract_id}@{k.contract_version} is not for contract {contract.ref}")


def distribution_drift(contract: Contract, verdict: WindowVerdict) -> CloudEvent | None:
    """The window's ``distribution.drift`` event (None when the binding monitors no drift)."""
    _checked(contract, verdict)
    wd = verdict.drift
    if wd is None:
        return None
    k = verdict.key
    start, end = _window(verdict)
    data = drift_data(wd.report, contract, k.topic, (start, end))
    data["window"] = {"start": iso_utc(start), "end": iso_utc(end)}  # as in window.summary
    data |= _about(contract, verdict)
    verdicts = [f.verdict for f in wd.report.fields]
    if any(v is Verdict.DRIFT for v in verdicts):
        severity = EventSeverity.WARNING
    elif verdicts and all(v is Verdict.INSUFFICIENT_DATA for v in verdicts):
        severity = EventSeverity.INFO
    else:
        severity = EventSeverity.OK
    eid = drift_event_id(EventType.DISTRIBUTION_DRIFT, contract, k.schema, k.topic, k.start_ms, k.end_ms)
    attributes = context_attributes(
        EventType.DISTRIBUTION_DRIFT, eid, source=source_urn("topic", k.topic), subject=k.topic, time=end,
        contract=contract, severity=severity,
    )  # fmt: skip
    return CloudEvent(attributes, data)


def prediction_confidence(contract: Contract, verdict: WindowVerdict) -> list[CloudEvent]:
    """One ``prediction.confidence`` event per ``model_version`` of the window (none for a feature contract)."""
    _checked(contract, verdict)
    wd = verdict.drift
    if wd is None or wd.confidence_threshold is None:
        return []
    k = verdict.key
    start, end = _window(verdict)
    out = []
    versions = sorted({m.model_version for m in wd.models})
    profiles = wd.profile.models if wd.profile is not None else {}  # the window's merged score histograms
    for model in sorted(wd.models, key=lambda m: m.model_version):
        data = confidence_data(
            model, contract, k.schema, k.topic, (start, end), reference_sha256=wd.reference_sha256,
            reference_rows=wd.reference_rows, confidence_threshold=wd.confidence_threshold,
            profile=profiles.get(model.model_version),
        )  # fmt: skip
        data["window"] = {"start": iso_utc(start), "end": iso_utc(end)}
        data |= _about(contract, verdict)
        data["window_versions"] = versions  # the window's events name every version: a pool knows when it is whole
        if model.verdict == "drift":
            severity = EventSeverity.WARNING
        elif model.new_version or model.verdict == "insufficient_data":
            severity = EventSeverity.INFO
        else:
            severity = EventSeverity.OK
        eid = drift_event_id(
            EventType.PREDICTION_CONFIDENCE, contract, k.schema, k.topic, k.start_ms, k.end_ms, model.model_version
        )
        attributes = context_attributes(
            EventType.PREDICTION_CONFIDENCE, eid, source=source_urn("topic", k.topic), subject=k.topic, time=end,
            contract=contract, severity=severity,
        )  # fmt: skip
        out.append(CloudEvent(attributes, data))
    return out


def window_schema_drift(contract: Contract, verdict: WindowVerdict, *, worker_id: str) -> CloudEvent | None:
    """The window's ``schema.drift`` event (None when its records carried exactly the declared fields)."""
    _checked(contract, verdict)
    sd = verdict.schema_drift
    if sd is None:
        return None
    k = verdict.key
    start, end = _window(verdict)
    schema_obj = contract.schema(k.schema)
    declared = {f.name: f for f in schema_obj.fields}
    missing_required = [f for f in sd.missing if f in declared and declared[f].required]
    if sd.types or missing_required:
        severity = EventSeverity.ERROR
    elif sd.unknown:
        severity = EventSeverity.WARNING
    else:
        severity = EventSeverity.INFO

    def cut(tallies: dict[str, FieldTally]) -> dict[str, FieldTally]:  # long names cut; names cut alike add up
        out: dict[str, FieldTally] = {}
        for name, tally in tallies.items():
            key = field_name(name)
            out[key] = out[key] + tally if key in out else tally
        return out

    unknown = cut(sd.unknown)

    def evidence(tallies: dict[str, FieldTally]) -> dict[str, list[dict[str, int]]]:
        return {n: [{"partition": p, "offset": o} for p, o in t.evidence] for n, t in tallies.items()}

    data = {
        "contract": {"id": contract.id, "version": contract.version, "sha256": contract.sha256},
        "schema": k.schema,
        "topic": k.topic,
        "worker_id": worker_id,
        "offsets": _offsets(verdict),
        "window": {"start": iso_utc(start), "end": iso_utc(end)},
        "owner": contract.owner.as_dict(),
        "scope": "window",
        "records": verdict.rows,
        "unknown_fields": {n: t.records for n, t in unknown.items()},
        "missing_fields": {n: t.records for n, t in sd.missing.items()},
        "type_mismatches": {n: t.records for n, t in sd.types.items()},
        "missing_required": missing_required,
        "expected_types": {f: declared[f].logical_type for f in sd.types if f in declared},
        "never_present": list(sd.never_present),
        "first_offending": {
            "unknown_fields": evidence(unknown),
            "missing_fields": evidence(sd.missing),
            "type_mismatches": evidence(sd.types),
        },
    }
    eid = drift_event_id(EventType.SCHEMA_DRIFT, contract, k.schema, k.topic, k.start_ms, k.end_ms)
    attributes = context_attributes(
        EventType.SCHEMA_DRIFT, eid, source=source_urn("topic", k.topic), subject=k.topic, time=end,
        contract=contract, severity=severity,
    )  # fmt: skip
    return CloudEvent(attributes, data)


def window_drift_events(contract: Contract, verdict: WindowVerdict, *, worker_id: str = "") -> list[CloudEvent]:
    """Every drift event of a finalized window: ``schema.drift`` (if any), ``distribution.drift`` (if the
    binding monitors drift), then ``prediction.confidence`` per model version."""
    events = [window_schema_drift(contract, verdict, worker_id=worker_id), distribution_drift(contract, verdict)]
    return [e for e in events if e is not None] + prediction_confidence(contract, verdict)
