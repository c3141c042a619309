"""Red-team pass 3: the context attributes every builder sets, checked against CloudEvents 1.0 as a consumer
reads them: the required ones present and non-empty, ``time`` RFC 3339 in UTC, ``dataschema`` an absolute URI
naming the type's schema, extension names lowercase alphanumerics of at most 20 characters, the Kafka key the
contract id, and ``source`` the percent-encoded URN docs/events.md shows."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from streams.contracts.loader import parse_contract
from streams.events import event_data, from_kafka, to_kafka
from streams.events.actions import policy_action, policy_command
from streams.events.policy import policy_triggered
from streams.events.types import EventType, dataschema_for
from streams.policies import parse_policies
from tests.unit.events.test_events import _contract, _drift, _lifecycle, _report, _summary, _violations
from tests.unit.policies.conftest import CONTRACT

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _events() -> list[object]:
    c = _contract()
    payments = parse_contract(CONTRACT, path="payments.yaml")
    policy = parse_policies(payments)[0]
    return [
        _summary(c, _report(c)), *_violations(c, _report(c)), _drift(c, unknown={"promo": 2}),
        _lifecycle("started", [c]), _lifecycle("started", [c, _contract("2.0.0")]),
        policy_triggered(payments, schema="payments", incident_id="a" * 32, policy=policy.as_dict(),
                         windows=[{"start": T0, "end": T0 + timedelta(minutes=1), "value": 0.5}], opened_at=T0),
        policy_action(payments, schema="payments", incident_id="a" * 32, policy=policy.name, decision="triggered",
                      action="page", model_version=None, channel="webhook", target="pager", status="sent", time=T0),
        policy_command("resolve-incident", incident_id="b" * 32, time=T0, reason="fixed"),
    ]  # fmt: skip


def test_every_built_event_has_spec_conformant_attributes_on_the_wire() -> None:
    events = _events()
    assert {e.get_type() for e in events} >= {str(EventType.POLICY_COMMAND), str(EventType.RULE_VIOLATION)}  # type: ignore[attr-defined]
    for built in events:
        key, value, headers = to_kafka(built)  # type: ignore[arg-type]
        names = [n for n, _ in headers]
        assert len(names) == len(set(names))
        assert {"ce_id", "ce_source", "ce_specversion", "ce_type", "ce_time", "content-type"} <= set(names)
        event = from_kafka(key, value, headers)
        assert event.get_id() == built.get_id() and re.fullmatch(r"[0-9a-f]{32}", event.get_id())  # type: ignore[attr-defined]
        assert RFC3339_UTC.match(dict(headers)["ce_time"].decode())
        assert event.get_dataschema() == dataschema_for(event.get_type())
        assert re.fullmatch(r"[a-z][a-z0-9+.-]*:\S+", event.get_dataschema() or "")  # an absolute URI
        extensions = set(event.get_attributes()) - {"id", "source", "specversion", "type", "time", "subject",
                                                    "datacontenttype", "dataschema"}  # fmt: skip
        assert all(re.fullmatch(r"[a-z0-9]{1,20}", name) for name in extensions), extensions
        contract = event.get_extension("contractid")
        partitionkey = event.get_extension("partitionkey")
        if contract is not None:  # every event of a contract on one partition
            assert key == contract.encode() and partitionkey == contract
        assert isinstance(event_data(event), dict)


def test_policy_sources_are_the_percent_encoded_urn_the_docs_show() -> None:
    events = _events()
    action, command = events[-2], events[-1]
    assert action.get_source() == "urn:qstreams:policy:urn:test:payments%2F" + action.get_subject()  # type: ignore[attr-defined]
    assert command.get_source() == "urn:qstreams:policy:incident%2F" + "b" * 32  # type: ignore[attr-defined]
    assert to_kafka(command)[0] == b"b" * 32  # type: ignore[arg-type]  # no contract: keyed by the incident
