"""Quality events: builders, deterministic ids, redaction, JSON Schemas and the Kafka binary binding."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import orjson
import polars as pl
import pytest

from streams.contracts.model import (
    Classification,
    Contract,
    Field,
    Op,
    Owner,
    Rule,
    SchemaObject,
    Severity,
    Threshold,
    Unit,
)
from streams.errors import EventDataError, EventError, StreamsError
from streams.events import (
    CloudEvent,
    EventType,
    batch_summary,
    event_data,
    from_kafka,
    lifecycle,
    load_schema,
    rule_violations,
    schema_drift,
    to_kafka,
    validate_event,
)
from streams.events.types import SCHEMA_FILES
from streams.validation.report import CheckResult, ValidationReport

TOPIC = "features.card-transactions.v1"
START = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
END = START + timedelta(seconds=3, milliseconds=250)
OFFSETS = {1: (100, 149), 0: (40, 89)}
SECRET = "4111-1111-1111-1111"
OWNER_OBJ = Owner(
    team="payments-features",
    members=("ana.ribeiro@example.com",),
    roles=("owner",),
    support_channel="#payments-features-oncall",
    support_url="https://example.com/slack/payments-features-oncall",
)
OWNER = OWNER_OBJ.as_dict()


# --------------------------------------------------------------------------- fixtures


def _check(name: str, column: str | None, check: str, sev: Severity, failures: int, **kw: Any) -> CheckResult:
    """A check result as the engine reports it, with rates over 100 rows."""
    kw = {"threshold": "mustBe 0 rows", "dimension": None, "gates_rows": True, **kw}
    return CheckResult(name, column, check, sev, failures, failures / 100, failures == 0, failures, **kw)


def _contract(version: str = "1.4.0", sha: str = "a" * 64) -> Contract:
    fields = (
        Field("event_id", "string", pl.String(), required=True, unique=True, primary_key=True),
        Field("amount", "number", pl.Float64(), required=True),
        Field("card_hash", "string", pl.String(), required=True, classification=Classification.RESTRICTED),
        Field("email", "string", pl.String(), classification=Classification.PII),
        Field("channel", "string", pl.String()),
    )
    threshold = Threshold("mustBeLessThan", 5, Unit.PERCENT)
    rules = (
        Rule("amount_positive", Op.GT, (0,), "greater_than(0)", column="amount", description="Amounts are > 0."),
        Rule("card_hash_format", Op.STR_LENGTH, (64, 64), "str_length(64, 64)", column="card_hash"),
        Rule("channel_known", Op.ISIN, (("web", "pos"),), "isin(['web', 'pos'])", column="channel",
             severity=Severity.WARNING, threshold=threshold, dimension="conformity"),
        Rule("email_or_card", Op.EXPRESSION, (), "expression(email != card_hash)", severity=Severity.INFO),
    )  # fmt: skip
    return Contract(
        id="urn:datacontract:payments:card-transactions", version=version, status="active", sha256=sha,
        schemas=(SchemaObject("card_transactions", TOPIC, fields, rules),), name="Card transactions", owner=OWNER_OBJ,
    )  # fmt: skip


_CASE_SCHEMA = {
    "failure_case": pl.String, "schema_context": pl.String, "column": pl.String, "check": pl.String,
    "check_number": pl.Int32, "index": pl.Int32, "rule": pl.String,
}  # fmt: skip


def _cases(rows: list[tuple[str | None, str, str | None, str, int, str]]) -> pl.DataFrame:
    """Failure cases from (failure_case, schema_context, column, check, index, rule)."""
    data = [(v, ctx, col, chk, 0, i, r) for v, ctx, col, chk, i, r in rows]
    return pl.DataFrame(data, schema=_CASE_SCHEMA, orient="row")


def _fake(
    contract: Contract, checks: tuple[CheckResult, ...], cases: pl.DataFrame, invalid: int = 0
) -> ValidationReport:
    """A real :class:`ValidationReport` of 100 rows with the given checks and failure cases."""
    passed = all(c.passed for c in checks if c.severity is Severity.ERROR)
    return ValidationReport(
        contract_id=contract.id, contract_version=contract.version, contract_sha256=contract.sha256,
        schema="card_transactions", rows=100, valid_rows=100 - invalid, invalid_rows=invalid, passed=passed,
        checks=checks, valid_mask=pl.Series([i >= invalid for i in range(100)]),
        violations=pl.Series([[]] * 100, dtype=pl.List(pl.String)), failure_cases=cases,
    )  # fmt: skip


def _report(contract: Contract, *, leak: bool = False) -> ValidationReport:
    """100 rows; amount_positive, card_hash_format (error) and channel_known (warning) fail."""
    secret = SECRET if leak else "[REDACTED]"
    checks = (
        _check("amount_positive", "amount", "greater_than(0)", Severity.ERROR, 3),
        _check("card_hash_format", "card_hash", "str_length(64, 64)", Severity.ERROR, 2),
        _check("channel_known", "channel", "isin(['web', 'pos'])", Severity.WARNING, 7,
               threshold="mustBeLessThan 5 percent", dimension="conformity", gates_rows=False),
        _check("email_or_card", None, "expression(email != card_hash)", Severity.INFO, 0),
    )  # fmt: skip
    cases = _cases([
        ("-5.0", "Column", "amount", "greater_than(0)", 3, "amount_positive"),
        ("0.0", "Column", "amount", "greater_than(0)", 17, "amount_positive"),
        ("-1.5", "Column", "amount", "greater_than(0)", 42, "amount_positive"),
        (secret, "Column", "card_hash", "str_length(64, 64)", 5, "card_hash_format"),
        (secret, "Column", "card_hash", "str_length(64, 64)", 9, "card_hash_format"),
        *[("fax", "Column", "channel", "isin(['web', 'pos'])", i, "channel_known") for i in range(7)],
    ])  # fmt: skip
    return _fake(contract, checks, cases, invalid=5)


def _passing_report(contract: Contract, failed_severity: Severity | None = None) -> ValidationReport:
    checks = [_check("amount_positive", "amount", "greater_than(0)", Severity.ERROR, 0)]
    if failed_severity is not None:
        checks.append(_check("channel_known", "channel", "isin", failed_severity, 9))
    return _fake(contract, tuple(checks), _cases([]))


BATCH: dict[str, Any] = {"source_topic": TOPIC, "window_start": START, "window_end": END, "worker_id": "worker-1"}
SUMMARY: dict[str, Any] = {"latency_seconds": 0.42, "counts": {"valid": 95, "quarantined": 5}, "mode": "gate"}


def _summary(contract: Contract, report: Any, offsets: dict[int, tuple[int, int]] = OFFSETS, **kw: Any) -> CloudEvent:
    return batch_summary(contract, contract.schemas[0], report, **(BATCH | SUMMARY | {"offsets": offsets} | kw))


def _violations(contract: Contract, report: Any, sample_size: int = 20, offsets: Any = OFFSETS) -> list[CloudEvent]:
    return rule_violations(contract, contract.schemas[0], report, offsets=offsets, sample_size=sample_size, **BATCH)


def _drift(contract: Contract, **counts: dict[str, int]) -> CloudEvent:
    kw = {f"{k}_fields": counts.get(k, {}) for k in ("unknown", "missing")} | BATCH
    return schema_drift(
        contract, contract.schemas[0], offsets=OFFSETS, type_mismatches=counts.get("mismatch", {}), **kw
    )


def _lifecycle(phase: str, contracts: list[Contract], **kw: Any) -> CloudEvent:
    return lifecycle(phase, **({"worker_id": "w1", "app_id": "qs", "mode": "gate", "contracts": contracts} | kw))


def _attrs(event: CloudEvent) -> dict[str, Any]:
    return dict(event.get_attributes())


# --------------------------------------------------------------------------- types and schemas


def test_event_types_and_schemas() -> None:
    assert [str(t) for t in EventType] == [
        "io.qualitystreams.batch.summary.v1",
        "io.qualitystreams.rule.violation.v1",
        "io.qualitystreams.schema.drift.v1",
        "io.qualitystreams.worker.lifecycle.v1",
        "io.qualitystreams.policy.triggered.v1",
        "io.qualitystreams.policy.resolved.v1",
        "io.qualitystreams.window.summary.v1",
        "io.qualitystreams.policy.action.v1",
        "io.qualitystreams.policy.command.v1",
        "io.qualitystreams.distribution.drift.v1",
        "io.qualitystreams.prediction.confidence.v1",
        "io.qualitystreams.model.performance.v1",
    ]
    assert set(SCHEMA_FILES) == set(EventType)
    for event_type in EventType:
        schema = load_schema(event_type)
        assert schema["$id"] == event_type.dataschema == f"urn:qstreams:schema:{event_type}"
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)
    with pytest.raises(ValueError, match="unknown quality event type"):
        load_schema("io.qualitystreams.policy.pause.v1")


# --------------------------------------------------------------------------- batch summary


def test_batch_summary_attributes_and_data() -> None:
    contract = _contract()
    event = _summary(contract, _report(contract))
    attrs = _attrs(event)
    assert {k: v for k, v in attrs.items() if k != "id"} == {
        "specversion": "1.0",
        "type": "io.qualitystreams.batch.summary.v1",
        "source": f"urn:qstreams:topic:{TOPIC}",
        "subject": TOPIC,
        "time": END,
        "datacontenttype": "application/json",
        "dataschema": "urn:qstreams:schema:io.qualitystreams.batch.summary.v1",
        "contractid": contract.id,
        "contractversion": "1.4.0",
        "contractsha256": "a" * 64,
        "severity": "error",
    }
    assert re.fullmatch(r"[0-9a-f]{32}", attrs["id"])
    data = event_data(event)
    assert data["contract"] == {"id": contract.id, "version": "1.4.0", "sha256": "a" * 64}
    assert (data["schema"], data["topic"], data["mode"], data["worker_id"]) == (
        "card_transactions", TOPIC, "gate", "worker-1"
    )  # fmt: skip
    assert data["offsets"] == [{"partition": 0, "first": 40, "last": 89}, {"partition": 1, "first": 100, "last": 149}]
    assert data["window"] == {"start": "2025-03-01T12:00:00Z", "end": "2025-03-01T12:00:03.250000Z"}
    assert data["counts"] == {"valid": 95, "quarantined": 5, "dead_lettered": 0}
    assert (data["rows"], data["passed"], data["latency_seconds"], data["owner"]) == (100, False, 0.42, OWNER)
    assert [r["name"] for r in data["rules"]] == [
        "amount_positive",
        "card_hash_format",
        "channel_known",
        "email_or_card",
    ]
    assert data["rules"][2] == {
        "name": "channel_known", "column": "channel", "check": "isin(['web', 'pos'])", "severity": "warning",
        "failures": 7, "failure_rate": 0.07, "passed": False, "value": 7, "threshold": "mustBeLessThan 5 percent",
        "dimension": "conformity", "error": None,
    }  # fmt: skip
    validate_event(event)


@pytest.mark.parametrize(
    ("failed", "expected"),
    [(None, "ok"), (Severity.INFO, "info"), (Severity.WARNING, "warning"), (Severity.ERROR, "error")],
)
def test_batch_summary_severity(failed: Severity | None, expected: str) -> None:
    contract = _contract()
    event = _summary(contract, _passing_report(contract, failed))
    assert event.get_extension("severity") == expected
    validate_event(event)


def test_batch_summary_without_report_all_dead_lettered() -> None:
    contract = _contract()
    event = _summary(contract, None, {2: (7, 7)}, counts={"dead_lettered": 1}, mode="monitor", window_end=START)
    data = event_data(event)
    assert (data["rows"], data["rules"], data["passed"]) == (0, [], None)
    assert data["counts"] == {"valid": 0, "quarantined": 0, "dead_lettered": 1}
    assert event.get_extension("severity") == "error"
    validate_event(event)


def test_batch_summary_rejects_bad_input() -> None:
    contract = _contract()
    with pytest.raises(ValueError, match="offset"):
        _summary(contract, _report(contract), offsets={})
    with pytest.raises(ValueError, match="bad offset range"):
        _summary(contract, _report(contract), offsets={0: (10, 9)})
    with pytest.raises(ValueError, match="does not match"):
        _summary(_contract(sha="b" * 64), _report(contract))
    with pytest.raises(ValueError, match="unknown count keys"):
        _summary(contract, None, counts={"ok": 1})
    with pytest.raises(ValueError, match="before window_start"):
        _summary(contract, None, window_end=START - timedelta(seconds=1))


def test_naive_window_is_utc() -> None:
    naive = _summary(_contract(), None, window_start=START.replace(tzinfo=None), window_end=END.replace(tzinfo=None))
    assert naive.get_time() == END
    assert event_data(naive)["window"]["end"] == "2025-03-01T12:00:03.250000Z"


# --------------------------------------------------------------------------- rule violations


def test_rule_violations_one_per_failed_rule() -> None:
    contract = _contract()
    events = _violations(contract, _report(contract))
    assert [e.get_extension("rule") for e in events] == ["amount_positive", "card_hash_format", "channel_known"]
    assert [e.get_extension("severity") for e in events] == ["error", "error", "warning"]
    assert len({e.get_id() for e in events}) == 3
    amount = event_data(events[0])
    assert amount["rule"] == {
        "name": "amount_positive", "column": "amount", "check": "greater_than(0)", "severity": "error",
        "dimension": None, "threshold": "mustBe 0 rows", "description": "Amounts are > 0.",
    }  # fmt: skip
    assert (amount["failures"], amount["failure_rate"], amount["value"], amount["rows"]) == (3, 0.03, 3, 100)
    assert (amount["owner"], amount["contract"]["sha256"], amount["topic"]) == (OWNER, "a" * 64, TOPIC)
    assert amount["offsets"][0] == {"partition": 0, "first": 40, "last": 89}
    assert [c["failure_case"] for c in amount["sample"]] == ["-5.0", "0.0", "-1.5"]
    assert amount["sample"][0] == {
        "failure_case": "-5.0", "schema_context": "Column", "column": "amount", "check": "greater_than(0)",
        "check_number": 0, "index": 3, "rule": "amount_positive",
    }  # fmt: skip
    for event in events:
        assert (event.get_type(), event.get_source()) == (EventType.RULE_VIOLATION, f"urn:qstreams:topic:{TOPIC}")
        assert (event.get_subject(), event.get_time()) == (TOPIC, END)
        validate_event(event)


def test_rule_violations_sample_size() -> None:
    contract = _contract()
    events = {e.get_extension("rule"): event_data(e) for e in _violations(contract, _report(contract), sample_size=2)}
    assert [c["index"] for c in events["channel_known"]["sample"]] == [0, 1]
    assert all(event_data(e)["sample"] == [] for e in _violations(contract, _report(contract), sample_size=0))


def test_rule_violations_none_when_all_pass_or_no_report() -> None:
    contract = _contract()
    assert _violations(contract, _passing_report(contract)) == []
    assert _violations(contract, None) == []


def test_classified_values_are_redacted_even_if_the_report_leaks_them() -> None:
    contract = _contract()
    events = _violations(contract, _report(contract, leak=True))
    card = next(event_data(e) for e in events if e.get_extension("rule") == "card_hash_format")
    assert [c["failure_case"] for c in card["sample"]] == ["[REDACTED]", "[REDACTED]"]
    assert all(SECRET.encode() not in to_kafka(event)[1] for event in events)


def test_frame_level_cases_hide_classified_values() -> None:
    contract = _contract()
    check = _check("email_or_card", None, "expression(email != card_hash)", Severity.INFO, 3)
    row = '{"email":"x@example.com","card_hash":"[REDACTED]","channel":"web"}'
    cases = _cases([
        (row, "DataFrameSchema", None, check.check, 4, "email_or_card"),  # the failing row, as the engine shows it
        ("email=x@example.com", "DataFrameSchema", None, check.check, 5, "email_or_card"),  # unknown shape
        ("no classified column named here", "DataFrameSchema", None, "other", 6, "email_or_card"),
    ])  # fmt: skip
    (event,) = _violations(contract, _fake(contract, (check,), cases))
    shown = [c["failure_case"] for c in event_data(event)["sample"]]
    assert orjson.loads(shown[0]) == {"email": "[REDACTED]", "card_hash": "[REDACTED]", "channel": "web"}
    assert shown[1] == "[REDACTED]"
    assert shown[2] == "[REDACTED]"  # the rule's check names classified columns
    assert event.get_extension("severity") == "info"
    validate_event(event)


def test_batch_metric_cases_keep_their_value() -> None:
    contract = _contract()
    metric = Rule("enough_rows", Op.ROW_COUNT, (), "row_count", threshold=Threshold("mustBeGreaterThan", 500))
    schema = dataclasses.replace(contract.schemas[0], rules=(*contract.schemas[0].rules, metric))
    contract = dataclasses.replace(contract, schemas=(schema,))
    check = _check("enough_rows", None, "row_count", Severity.ERROR, 1)
    cases = _cases([("100", "DataFrameSchema", None, "row_count", 0, "enough_rows")])
    (event,) = _violations(contract, _fake(contract, (check,), cases))
    assert event_data(event)["sample"][0]["failure_case"] == "100"


def test_sample_drops_unknown_failure_case_columns() -> None:
    contract = _contract()
    report = _report(contract)
    extra = report.failure_cases.with_columns(pl.lit(SECRET).alias("raw_record"))
    events = _violations(contract, dataclasses.replace(report, failure_cases=extra))
    assert [e.get_extension("rule") for e in events] == ["amount_positive", "card_hash_format", "channel_known"]
    for event in events:
        sample = event_data(event)["sample"]
        assert sample, f"no sample in {event.get_extension('rule')}: the check below would pass vacuously"
        assert all("raw_record" not in case for case in sample)
        assert SECRET.encode() not in to_kafka(event)[1]


# --------------------------------------------------------------------------- schema drift


def test_schema_drift() -> None:
    contract = _contract()
    event = _drift(
        contract, unknown={"promo": 12, "zero": 0}, missing={"channel": 3, "amount": 1}, mismatch={"amount": 2}
    )
    data = event_data(event)
    assert data["unknown_fields"] == {"promo": 12}
    assert list(data["missing_fields"].items()) == [("amount", 1), ("channel", 3)]  # sorted by field
    assert data["type_mismatches"] == {"amount": 2}
    assert (data["missing_required"], data["expected_types"]) == (["amount"], {"amount": "number"})
    assert (event.get_type(), event.get_extension("severity")) == (EventType.SCHEMA_DRIFT, "error")
    assert event.get_dataschema() == "urn:qstreams:schema:io.qualitystreams.schema.drift.v1"
    validate_event(event)
    assert _drift(contract, unknown={"promo": 1}).get_extension("severity") == "warning"
    assert _drift(contract, missing={"channel": 1}).get_extension("severity") == "info"
    assert _drift(contract).get_extension("severity") == "ok"
    with pytest.raises(ValueError, match="negative"):
        _drift(contract, unknown={"promo": -1})


# --------------------------------------------------------------------------- lifecycle


def test_lifecycle_single_contract() -> None:
    contract = _contract()
    started = datetime(2025, 3, 1, 11, 0, tzinfo=UTC)
    kw: dict[str, Any] = {"worker_id": "host-1:4242", "started_at": started, "generation": 7}
    event = _lifecycle("partitions_assigned", [contract], partitions=[(TOPIC, 2), (TOPIC, 0)], **kw)
    attrs = _attrs(event)
    assert (attrs["type"], attrs["source"]) == (EventType.WORKER_LIFECYCLE, "urn:qstreams:worker:host-1:4242")
    assert (attrs["subject"], attrs["contractid"], attrs["severity"]) == (contract.id, contract.id, "info")
    assert attrs["time"].tzinfo is not None
    data = event_data(event)
    assert data["phase"] == "partitions_assigned"
    assert data["partitions"] == [{"topic": TOPIC, "partition": 0}, {"topic": TOPIC, "partition": 2}]
    assert data["contracts"][0]["schemas"] == [{"name": "card_transactions", "topic": TOPIC}]
    assert (data["started_at"], data["generation"]) == ("2025-03-01T11:00:00Z", 7)
    validate_event(event)
    again = _lifecycle("partitions_assigned", [contract], partitions=[(TOPIC, 0), (TOPIC, 2)], **kw)
    assert again.get_id() == event.get_id()
    rebalanced = _lifecycle(
        "partitions_assigned", [contract], partitions=[(TOPIC, 0), (TOPIC, 2)], **kw | {"generation": 8}
    )
    assert rebalanced.get_id() != event.get_id()


def test_lifecycle_phases_and_multiple_contracts() -> None:
    one, two = _contract(), dataclasses.replace(_contract(), id="urn:datacontract:ml:fraud-predictions")
    for phase in ("started", "stopped", "partitions_revoked"):
        event = _lifecycle(phase, [two, one], mode="monitor")
        assert event.get_subject() is None and event.get_extension("contractid") is None
        assert [c["id"] for c in event_data(event)["contracts"]] == sorted([one.id, two.id])
        validate_event(event)
    failed = _lifecycle("binding_failed", [one], reason="topic does not exist")
    assert failed.get_extension("severity") == "error"
    assert event_data(failed)["reason"] == "topic does not exist"
    validate_event(failed)
    assert _lifecycle("started", [one]).get_id() != _lifecycle("started", [one], started_at=START).get_id()
    with pytest.raises(ValueError):
        _lifecycle("exploded", [one])


# --------------------------------------------------------------------------- deterministic ids


def test_ids_are_deterministic() -> None:
    contract, report = _contract(), _report(_contract())
    assert _summary(contract, report).get_id() == _summary(_contract(), _report(_contract())).get_id()
    # the order partitions are given in does not matter
    assert _summary(contract, report, {0: (40, 89), 1: (100, 149)}).get_id() == _summary(contract, report).get_id()
    assert [e.get_id() for e in _violations(contract, report)] == [e.get_id() for e in _violations(contract, report)]
    assert _drift(contract, unknown={"x": 1}).get_id() == _drift(contract, unknown={"x": 1}).get_id()


def test_ids_differ_by_batch_type_rule_and_contract() -> None:
    contract, report = _contract(), _report(_contract())
    base = _summary(contract, report).get_id()
    assert _summary(contract, report, {0: (40, 90), 1: (100, 149)}).get_id() != base
    assert _summary(contract, report, {0: (40, 89)}).get_id() != base
    assert _drift(contract).get_id() != base
    assert _summary(_contract(version="1.5.0"), dataclasses.replace(report, contract_version="1.5.0")).get_id() != base
    moved = [e.get_id() for e in _violations(contract, report, offsets={0: (90, 139)})]
    assert set(moved).isdisjoint(e.get_id() for e in _violations(contract, report))


# --------------------------------------------------------------------------- Kafka codec


def test_to_kafka_binary_mode_headers_key_and_value() -> None:
    contract = _contract()
    event = _violations(contract, _report(contract))[0]
    key, value, headers = to_kafka(event)
    assert key == contract.id.encode()
    assert [name for name, _ in headers] == [
        "ce_specversion", "ce_id", "ce_type", "ce_source", "ce_subject", "ce_time", "content-type", "ce_dataschema",
        "ce_contractid", "ce_contractversion", "ce_contractsha256", "ce_severity", "ce_rule",
    ]  # fmt: skip
    h = dict(headers)
    assert (h["content-type"], h["ce_specversion"]) == (b"application/json", b"1.0")
    assert (h["ce_type"], h["ce_rule"]) == (b"io.qualitystreams.rule.violation.v1", b"amount_positive")
    assert (h["ce_time"], h["ce_id"]) == (b"2025-03-01T12:00:03.250000Z", event.get_id().encode())
    assert orjson.loads(value) == event_data(event)
    assert b": " not in value  # compact orjson output
    assert to_kafka(event, key=b"custom")[0] == b"custom"


def test_round_trip() -> None:
    contract = _contract()
    report = _report(contract)
    events = [
        _summary(contract, report),
        *_violations(contract, report),
        _drift(contract, unknown={"promo": 2}),
        _lifecycle("started", [contract]),
    ]
    for event in events:
        key, value, headers = to_kafka(event)
        decoded = from_kafka(key, value, headers)
        attrs = _attrs(decoded)
        assert attrs.pop("partitionkey") == contract.id
        assert attrs == _attrs(event)
        assert event_data(decoded) == event_data(event)
        validate_event(decoded)
        # re-encoding a decoded event keeps the key and sends no partitionkey header
        assert to_kafka(decoded) == (key, value, headers)


def test_from_kafka_accepts_mappings_uppercase_names_and_structured_mode() -> None:
    contract = _contract()
    event = _summary(contract, _report(contract))
    key, value, headers = to_kafka(event)
    assert from_kafka(None, value, {name.upper(): v for name, v in headers}).get_id() == event.get_id()
    assert from_kafka(key, value, [*headers, ("traceparent", None)]).get_type() == EventType.BATCH_SUMMARY
    structured = orjson.dumps({**_attrs(event), "data": event_data(event)}, option=orjson.OPT_UTC_Z)
    decoded = from_kafka(key, structured, [("content-type", b"application/cloudevents+json")])
    assert decoded.get_id() == event.get_id() and event_data(decoded) == event_data(event)
    with pytest.raises(ValueError, match="tombstone"):
        from_kafka(key, None, headers)


def test_lifecycle_key_without_single_contract_is_the_source() -> None:
    event = _lifecycle("started", [_contract(), dataclasses.replace(_contract(), id="urn:other")])
    key, _, headers = to_kafka(event)
    assert key == b"urn:qstreams:worker:w1"
    assert "ce_contractid" not in dict(headers) and "ce_subject" not in dict(headers)


# --------------------------------------------------------------------------- validate_event


def test_validate_event_rejects_bad_events() -> None:
    contract = _contract()
    event = _summary(contract, _report(contract))
    attrs, data = _attrs(event), event_data(event)
    with pytest.raises(jsonschema.ValidationError):
        validate_event(CloudEvent(attrs, data | {"counts": {"valid": -1, "quarantined": 0, "dead_lettered": 0}}))
    with pytest.raises(jsonschema.ValidationError):
        validate_event(CloudEvent(attrs, {k: v for k, v in data.items() if k != "offsets"}))
    with pytest.raises(ValueError, match="dataschema"):
        validate_event(CloudEvent(attrs | {"dataschema": "urn:other"}, data))
    with pytest.raises(ValueError, match="unknown quality event type"):
        validate_event(CloudEvent(attrs | {"type": "io.qualitystreams.policy.pause.v1"}, data))
    validate_event(CloudEvent(attrs, orjson.dumps(data).decode()))  # JSON text is parsed first


def test_event_errors_are_streams_errors_and_keep_their_builtin_base() -> None:
    contract = _contract()
    event = _summary(contract, _report(contract))
    attrs = _attrs(event)
    with pytest.raises(EventDataError, match="not valid JSON") as not_json:
        event_data(CloudEvent(attrs, "{not json"))
    with pytest.raises(EventDataError, match="no JSON object as data") as not_object:
        event_data(CloudEvent(attrs, "[1, 2]"))
    with pytest.raises(EventError, match="tombstone") as tombstone:
        from_kafka(b"k", None, [])
    with pytest.raises(EventError, match="at least one partition") as no_offsets:
        _summary(contract, _report(contract), {})
    errors = [not_json.value, not_object.value, tombstone.value, no_offsets.value]
    assert all(isinstance(e, StreamsError) and isinstance(e, ValueError) for e in errors)
    assert isinstance(not_object.value, TypeError)  # what event_data raised before
