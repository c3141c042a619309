"""A realistic stream of quality events for the governance tests: one contract, 14 one-minute windows.

Window summaries with the failure rate of ``amount:maximum`` following :data:`RATES`, drift of
``amount`` rising from window 8 (PSI), prediction confidence of two model versions, and the
policy events the real incident state machine (:class:`~streams.policies.IncidentBook`) decides
on the same windows. Every event is checked against its JSON Schema.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cloudevents.core.v1.event import CloudEvent

from streams.contracts.model import Contract
from streams.events import validate_event
from streams.events.types import EventSeverity, EventType, context_attributes, event_id, iso_utc, source_urn
from streams.events.window import window_summary_id
from streams.policies import IncidentBook, Observation, RuleOutcome, decision_event, parse_policies

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RULE = "amount:maximum"
RECORDS = 1000
# trigger above 1% for 2 windows; resolve below 0.5% for 2 windows (amount-out-of-range: opens at 4, resolves at 10)
RATES = [0.0, 0.02, 0.0, 0.02, 0.03, 0.04, 0.008, 0.004, 0.006, 0.004, 0.003, 0.0, 0.0, 0.0]
PSI = [0.01, 0.02, 0.01, 0.03, 0.02, 0.05, 0.04, 0.06, 0.25, 0.31, 0.4, 0.35, 0.1, 0.05]
SHA = "ab" * 32


def window(i: int) -> tuple[datetime, datetime]:
    start = T0 + timedelta(minutes=i)
    return start, start + timedelta(minutes=1)


def _event(
    kind: EventType, contract: Contract, eid: str, time: datetime, severity: str, data: dict[str, Any]
) -> CloudEvent:
    attributes = context_attributes(
        kind, eid, source=source_urn("topic", "shop.payments.v1"), subject="shop.payments.v1", time=time,
        contract=contract, severity=EventSeverity(severity),
    )  # fmt: skip
    event = CloudEvent(attributes, data)
    validate_event(event)
    return event


def _head(contract: Contract, i: int) -> dict[str, Any]:
    start, end = window(i)
    return {
        "contract": {"id": contract.id, "version": contract.version, "sha256": contract.sha256},
        "schema": "payments",
        "topic": "shop.payments.v1",
        "window": {"start": iso_utc(start), "end": iso_utc(end)},
    }


def _check(name: str, column: str | None, failures: int, severity: str = "error") -> dict[str, Any]:
    return {
        "name": name, "column": column, "check": name, "severity": severity, "failures": failures,
        "failure_rate": failures / RECORDS, "passed": failures == 0, "value": failures, "threshold": "mustBe 0 rows",
        "dimension": "conformity", "error": None, "evaluation": "batches", "first_offending": [],
    }  # fmt: skip


def summary(contract: Contract, i: int) -> CloudEvent:
    failures = round(RATES[i] * RECORDS)
    checks = [_check(RULE, "amount", failures), _check("id:required", "id", 1 if i == 5 else 0, "warning")]
    passed = all(c["passed"] for c in checks if c["severity"] == "error")
    data = {
        **_head(contract, i), "records": RECORDS, "rows": RECORDS, "valid": RECORDS - failures, "quarantined": failures,
        "dead_lettered": 0, "late": 0, "skewed": 0, "passed": passed, "checks": checks,
        "owner": contract.owner.as_dict(),
        "partitions": [{"partition": 0, "first": i * RECORDS, "last": (i + 1) * RECORDS - 1}],
        "finalized_by": "worker-1",
    }  # fmt: skip
    severity = str(EventSeverity.highest(c["severity"] for c in checks if not c["passed"]))
    start, end = window(i)
    eid = window_summary_id(
        contract, "payments", "shop.payments.v1", int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    )
    return _event(EventType.WINDOW_SUMMARY, contract, eid, end, severity, data)


def drift(contract: Contract, i: int) -> CloudEvent:
    psi = PSI[i]
    fields = [
        {"field": "amount", "kind": "numeric", "verdict": "drift" if psi > 0.2 else "ok", "method": "psi",
         "reference_count": 5000, "current_count": RECORDS,
         "metrics": [{"metric": "psi", "value": psi, "threshold": 0.2, "drifted": psi > 0.2}],
         "new_categories": [], "vanished_categories": []},
        {"field": "country", "kind": "categorical", "verdict": "ok", "method": "jensen_shannon",
         "reference_count": 5000, "current_count": RECORDS,
         "metrics": [{"metric": "jensen_shannon", "value": psi / 4, "threshold": 0.1, "drifted": False}],
         "new_categories": [], "vanished_categories": []},
    ]  # fmt: skip
    drifted = [f["field"] for f in fields if f["verdict"] == "drift"]
    data = {
        **_head(contract, i), "reference": {"sha256": SHA, "rows": 5000}, "records": RECORDS,
        "verdicts": {"ok": 2 - len(drifted), "drift": len(drifted), "insufficient_data": 0},
        "drifted": drifted, "fields": fields,
    }  # fmt: skip
    eid = event_id(str(EventType.DISTRIBUTION_DRIFT), contract.ref, i)
    return _event(EventType.DISTRIBUTION_DRIFT, contract, eid, window(i)[1], "warning" if drifted else "ok", data)


def confidence(contract: Contract, i: int, model: str) -> CloudEvent:
    mean = 0.9 - (0.02 * i if model == "fraud-v4" else 0.0)
    data = {
        **_head(contract, i), "reference": {"sha256": SHA, "rows": 5000}, "model_version": model,
        "new_version": False, "baseline_version": None, "verdict": "drift" if mean < 0.75 else "ok", "count": 500,
        "mean_confidence": mean, "low_confidence_share": max(0.0, 0.9 - mean), "confidence_threshold": 0.5,
        "expected_accuracy": mean, "label_mix": {"fraud": 0.04, "ok": 0.96}, "metrics": [],
    }  # fmt: skip
    eid = event_id(str(EventType.PREDICTION_CONFIDENCE), contract.ref, i, model)
    return _event(EventType.PREDICTION_CONFIDENCE, contract, eid, window(i)[1], "ok", data)


def observation(contract: Contract, i: int) -> Observation:
    start, end = window(i)
    rate = RATES[i]
    rules = {RULE: RuleOutcome(round(rate * RECORDS), rate, rate == 0.0)}
    return Observation(contract.id, "payments", start, end, contract.version, RECORDS, rules=rules,
                       metrics={"drift.psi:amount": PSI[i]})  # fmt: skip


def policy_events(contract: Contract, windows: int = len(RATES)) -> list[CloudEvent]:
    book = IncidentBook(parse_policies(contract))
    out = []
    for i in range(windows):
        for decision in book.observe(observation(contract, i)):
            event = decision_event(decision, contract)
            validate_event(event)
            out.append(event)
    return out


def scenario(contract: Contract, windows: int = len(RATES)) -> list[CloudEvent]:
    """Every event of the scenario, in the order a topic would carry them (per window, then decisions)."""
    events: list[CloudEvent] = []
    for i in range(windows):
        events += [summary(contract, i), drift(contract, i)]
        events += [confidence(contract, i, m) for m in ("fraud-v3", "fraud-v4")]
    return events + policy_events(contract, windows)
