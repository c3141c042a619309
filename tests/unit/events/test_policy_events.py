"""`policy.triggered` / `policy.resolved` events: schema-valid, deterministic ids, owner and runbook, on the wire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jsonschema
import pytest

from streams.contracts.loader import parse_contract
from streams.errors import EventError
from streams.events import EventSeverity, EventType, event_data, from_kafka, to_kafka, validate_event
from streams.events.policy import policy_resolved, policy_triggered
from streams.policies import IncidentBook, Observation, RuleOutcome, decision_event, parse_policies
from tests.unit.policies.conftest import CONTRACT

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _decisions() -> list:  # type: ignore[type-arg]
    contract = parse_contract(CONTRACT, path="payments.yaml")
    book = IncidentBook(tuple(p for p in parse_policies(contract) if p.name == "amount-out-of-range"))
    out = []
    for i, rate in enumerate([0.02, 0.03, 0.001, 0.0]):
        start = T0 + timedelta(minutes=i)
        rules = {"amount:maximum": RuleOutcome(int(rate * 100), rate, rate == 0)}
        out += book.observe(Observation(contract.id, "payments", start, start + timedelta(minutes=1), "1.0.0", 100,
                                        rules=rules))  # fmt: skip
    return out


def test_decisions_become_valid_events_with_owner_runbook_and_action() -> None:
    contract = parse_contract(CONTRACT, path="payments.yaml")
    triggered, resolved = (decision_event(d, contract) for d in _decisions())
    for event in (triggered, resolved):
        validate_event(event)
    data = event_data(triggered)
    assert triggered.get_type() == EventType.POLICY_TRIGGERED
    assert triggered.get_extension("severity") == EventSeverity.ERROR  # critical
    assert triggered.get_subject() == "amount-out-of-range" and triggered.get_time() == T0 + timedelta(minutes=2)
    assert data["owner"] == {
        "team": "payments", "owners": ["ana"], "members": ["ana"], "support_channel": "#payments-oncall",
        "support_url": "https://chat.example.com/payments", "runbook_url": "https://wiki.example.com/payments-runbook",
    }  # fmt: skip
    assert data["action"] == {"type": "page", "model_version": None} and data["topic"] == "shop.payments.v1"
    assert [w["value"] for w in data["windows"]] == [0.02, 0.03] and data["windows"][0]["start"].endswith("Z")
    rdata = event_data(resolved)
    assert rdata["incident"] == data["incident"] and resolved.get_extension("severity") == EventSeverity.OK
    assert rdata["resolution"] == {
        "resolved_at": "2026-12-01T12:04:00Z", "how": "auto", "by": None, "duration_seconds": 120.0,
    }  # fmt: skip


def test_ids_are_deterministic_per_incident_and_type() -> None:
    contract = parse_contract(CONTRACT, path="payments.yaml")
    first = [decision_event(d, contract).get_id() for d in _decisions()]
    again = [decision_event(d, contract).get_id() for d in _decisions()]
    assert first == again and len(set(first)) == 2


def test_round_trip_through_kafka_records() -> None:
    contract = parse_contract(CONTRACT, path="payments.yaml")
    event = decision_event(_decisions()[0], contract)
    key, value, headers = to_kafka(event)
    assert key == contract.id.encode()
    back = from_kafka(key, value, headers)
    assert back.get_id() == event.get_id() and event_data(back) == event_data(event)
    validate_event(back)


def test_builders_refuse_bad_arguments_and_the_schema_catches_bad_data() -> None:
    contract = parse_contract(CONTRACT, path="payments.yaml")
    policy = parse_policies(contract)[0].as_dict()
    common = {"schema": "payments", "incident_id": "0" * 32, "policy": policy, "opened_at": T0}
    with pytest.raises(EventError, match="needs the windows"):
        policy_triggered(contract, windows=[], **common)  # type: ignore[arg-type]
    with pytest.raises(EventError, match="before it opened"):
        policy_resolved(contract, windows=[], resolved_at=T0 - timedelta(seconds=1), **common)  # type: ignore[arg-type]
    with pytest.raises(EventError, match="no schema object"):
        policy_triggered(contract, windows=[{"start": T0, "end": T0, "value": 1}], **(common | {"schema": "x"}))  # type: ignore[arg-type]
    bad = policy_triggered(contract, windows=[{"start": T0, "end": T0, "value": 1}], **(common | {"incident_id": "x"}))  # type: ignore[arg-type]
    with pytest.raises(jsonschema.ValidationError):
        validate_event(bad)
    manual = policy_resolved(contract, windows=[], resolved_at=T0, how="manual", by="ana", **common)  # type: ignore[arg-type]
    validate_event(manual)
