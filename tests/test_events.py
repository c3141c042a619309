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

TOPIC = "features.card-transactions.v1"
START = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
END = START + timedelta(seconds=3, milliseconds=250)
OFFSETS = {1: (100, 149), 0: (40, 89)}
SECRET = "4111-1111-1111-1111"


# --------------------------------------------------------------------------- fixtures


@dataclasses.dataclass(frozen=True)
class FakeCheck:
    """Duck-typed stand-in for ``streams.validation.report.CheckResult``."""

    name: str
    column: str | None
    check: str
    severity: Severity
    failures: int
    failure_rate: float
    passed: bool
    value: float | int | None
    threshold: str
    dimension: str | None
    gates_rows: bool = True
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class FakeReport:
    """Duck-typed stand-in for ``streams.validation.report.ValidationReport``."""

    contract_id: str
    contract_version: str
    contract_sha256: str
    schema: str
    rows: int
    valid_rows: int
    invalid_rows: int
    passed: bool
    checks: tuple[FakeCheck, ...]
    failure_cases: pl.DataFrame


def _contract(version: str = "1.4.0", sha: str = "a" * 64) -> Contract:
    fields = (
        Field("event_id", "string", pl.String(), required=True, unique=True, primary_key=True),
        Field("amount", "number", pl.Float64(), required=True),
        Field("card_hash", "string", pl.String(), required=True, classification=Classification.RESTRICTED),
        Field("email", "string", pl.String(), classification=Classification.PII),
        Field("channel", "string", pl.String()),
    )
    rules = (
        Rule("amount_positive", Op.GT, (0,), "greater_than(0)", column="amount", description="Amounts are > 0."),
        Rule("card_hash_format", Op.STR_LENGTH, (64, 64), "str_length(64, 64)", column="card_hash"),
        Rule(
            "channel_known",
            Op.ISIN,
            (("web", "pos"),),
            "isin(['web', 'pos'])",
            column="channel",
            severity=Severity.WARNING,
            threshold=Threshold("mustBeLessThan", 5, Unit.PERCENT),
            dimension="conformity",
        ),
        Rule("email_or_card", Op.EXPRESSION, (), "expression(email != card_hash)", severity=Severity.INFO),
    )
    schema = SchemaObject("card_transactions", TOPIC, fields, rules)
    owner = Owner(
        team="payments-features",
        members=("ana.ribeiro@example.com",),
        roles=("owner",),
        support_channel="#payments-features-oncall",
        support_url="https://example.com/slack/payments-features-oncall",
    )
    return Contract(
        id="urn:datacontract:payments:card-transactions",
        version=version,
        status="active",
        sha256=sha,
        schemas=(schema,),
        name="Card transaction features",
        owner=owner,
    )


_CASE_SCHEMA = {
    "failure_case": pl.String, "schema_context": pl.String, "column": pl.String, "check": pl.String,
    "check_number": pl.Int32, "index": pl.Int32, "rule": pl.String,
}  # fmt: skip


def _cases(rows: list[tuple[str | None, str, str | None, str, int, str]]) -> pl.DataFrame:
    """Failure cases from (failure_case, schema_context, column, check, index, rule)."""
    return pl.DataFrame(
        [(v, ctx, col, chk, 0, i, r) for v, ctx, col, chk, i, r in rows], schema=_CASE_SCHEMA, orient="row"
    )


def _report(contract: Contract, *, leak: bool = False) -> FakeReport:
    """100 rows: amount_positive (error) and channel_known (warning) fail, card_hash_format errors out."""
    secret = SECRET if leak else "[REDACTED]"
    checks = (
        FakeCheck("amount_positive", "amount", "greater_than(0)", Severity.ERROR, 3, 0.03, False, 3, "mustBe 0 rows", None),
        FakeCheck("card_hash_format", "card_hash", "str_length(64, 64)", Severity.ERROR, 2, 0.02, False, 2, "mustBe 0 rows", None),
        FakeCheck(
            "channel_known", "channel", "isin(['web', 'pos'])", Severity.WARNING, 7, 0.07, False, 7.0,
            "mustBeLessThan 5 percent", "conformity", gates_rows=False,
        ),
        FakeCheck("email_or_card", None, "expression(email != card_hash)", Severity.INFO, 0, 0.0, True, 0, "mustBe 0 rows", None),
    )  # fmt: skip
    cases = _cases(
        [
            ("-5.0", "Column", "amount", "greater_than(0)", 3, "amount_positive"),
            ("0.0", "Column", "amount", "greater_than(0)", 17, "amount_positive"),
            ("-1.5", "Column", "amount", "greater_than(0)", 42, "amount_positive"),
            (secret, "Column", "card_hash", "str_length(64, 64)", 5, "card_hash_format"),
            (secret, "Column", "card_hash", "str_length(64, 64)", 9, "card_hash_format"),
            *[("fax", "Column", "channel", "isin(['web', 'pos'])", i, "channel_known") for i in range(7)],
        ]
    )
    return FakeReport(
        contract.id, contract.version, contract.sha256, "card_transactions", 100, 95, 5, False, checks, cases
    )


def _passing_report(contract: Contract, failed_severity: Severity | None = None) -> FakeReport:
    checks = [
        FakeCheck(
            "amount_positive", "amount", "greater_than(0)", Severity.ERROR, 0, 0.0, True, 0, "mustBe 0 rows", None
        )
    ]
    if failed_severity is not None:
        checks.append(
            FakeCheck("channel_known", "channel", "isin", failed_severity, 9, 0.09, False, 9.0, "mustBe 0 rows", None)
        )
    return FakeReport(
        contract.id,
        contract.version,
        contract.sha256,
        "card_transactions",
        100,
        100,
        0,
        True,
        tuple(checks),
        _cases([]),
    )


BATCH: dict[str, Any] = {"source_topic": TOPIC, "window_start": START, "window_end": END, "worker_id": "worker-1"}
COUNTS = {"valid": 95, "quarantined": 5, "dead_lettered": 0}


def _summary(contract: Contract, report: Any, offsets: dict[int, tuple[int, int]] = OFFSETS) -> CloudEvent:
    kw = BATCH | {"offsets": offsets, "latency_seconds": 0.42, "counts": COUNTS, "mode": "gate"}
    return batch_summary(contract, contract.schemas[0], report, **kw)


def _violations(contract: Contract, report: Any, sample_size: int = 20, offsets: Any = OFFSETS) -> list[CloudEvent]:
    return rule_violations(contract, contract.schemas[0], report, offsets=offsets, sample_size=sample_size, **BATCH)


def _drift(contract: Contract, **counts: dict[str, int]) -> CloudEvent:
    kw = {"unknown_fields": counts.get("unknown", {}), "missing_fields": counts.get("missing", {})}
    return schema_drift(
        contract, contract.schemas[0], offsets=OFFSETS, type_mismatches=counts.get("mismatch", {}), **kw, **BATCH
    )


def _attrs(event: CloudEvent) -> dict[str, Any]:
    return dict(event.get_attributes())


# --------------------------------------------------------------------------- types


def test_event_types_and_schemas() -> None:
    assert EventType.BATCH_SUMMARY == "io.qualitystreams.batch.summary.v1"
    assert EventType.RULE_VIOLATION == "io.qualitystreams.rule.violation.v1"
    assert EventType.SCHEMA_DRIFT == "io.qualitystreams.schema.drift.v1"
    assert EventType.WORKER_LIFECYCLE == "io.qualitystreams.worker.lifecycle.v1"
    assert set(SCHEMA_FILES) == set(EventType)
    for event_type in EventType:
        schema = load_schema(event_type)
        assert schema["$id"] == event_type.dataschema == f"urn:qstreams:schema:{event_type}"
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)
    with pytest.raises(ValueError, match="unknown quality event type"):
        load_schema("io.qualitystreams.policy.action.v1")


# --------------------------------------------------------------------------- batch summary


def test_batch_summary_attributes_and_data() -> None:
    contract = _contract()
    event = _summary(contract, _report(contract))
    attrs = _attrs(event)
    assert attrs["specversion"] == "1.0"
    assert attrs["type"] == EventType.BATCH_SUMMARY
    assert attrs["source"] == f"urn:qstreams:topic:{TOPIC}"
    assert attrs["subject"] == TOPIC
    assert attrs["time"] == END
    assert attrs["datacontenttype"] == "application/json"
    assert attrs["dataschema"] == "urn:qstreams:schema:io.qualitystreams.batch.summary.v1"
    assert attrs["contractid"] == contract.id
    assert attrs["contractversion"] == "1.4.0"
    assert attrs["contractsha256"] == "a" * 64
    assert attrs["severity"] == "error"
    assert "rule" not in attrs
    assert re.fullmatch(r"[0-9a-f]{32}", attrs["id"])
    for name in attrs:
        assert re.fullmatch(r"[a-z0-9]+", name)

    data = event_data(event)
    assert data["contract"] == {"id": contract.id, "version": "1.4.0", "sha256": "a" * 64}
    assert data["schema"] == "card_transactions"
    assert data["topic"] == TOPIC
    assert data["mode"] == "gate"
    assert data["offsets"] == [{"partition": 0, "first": 40, "last": 89}, {"partition": 1, "first": 100, "last": 149}]
    assert data["window"] == {"start": "2025-03-01T12:00:00Z", "end": "2025-03-01T12:00:03.250000Z"}
    assert data["counts"] == {"valid": 95, "quarantined": 5, "dead_lettered": 0}
    assert data["rows"] == 100
    assert data["passed"] is False
    assert data["latency_seconds"] == 0.42
    assert data["owner"]["team"] == "payments-features"
    assert [r["name"] for r in data["rules"]] == [
        "amount_positive",
        "card_hash_format",
        "channel_known",
        "email_or_card",
    ]
    channel = data["rules"][2]
    assert channel == {
        "name": "channel_known",
        "column": "channel",
        "check": "isin(['web', 'pos'])",
        "severity": "warning",
        "failures": 7,
        "failure_rate": 0.07,
        "passed": False,
        "value": 7.0,
        "threshold": "mustBeLessThan 5 percent",
        "dimension": "conformity",
        "error": None,
    }
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
    event = batch_summary(
        contract,
        contract.schemas[0],
        None,
        source_topic=TOPIC,
        offsets={2: (7, 7)},
        window_start=START,
        window_end=START,
        latency_seconds=0.01,
        counts={"dead_lettered": 1},
        mode="monitor",
        worker_id="worker-1",
    )
    data = event_data(event)
    assert data["rows"] == 0 and data["rules"] == [] and data["passed"] is None
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
        batch_summary(
            contract, contract.schemas[0], None, source_topic=TOPIC, offsets=OFFSETS, window_start=START,
            window_end=END, latency_seconds=0.0, counts={"ok": 1}, mode="gate", worker_id="w",
        )  # fmt: skip


def test_naive_window_is_utc() -> None:
    contract = _contract()
    naive = batch_summary(
        contract, contract.schemas[0], None, source_topic=TOPIC, offsets=OFFSETS,
        window_start=START.replace(tzinfo=None), window_end=END.replace(tzinfo=None),
        latency_seconds=0.0, counts={}, mode="gate", worker_id="w",
    )  # fmt: skip
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
        "name": "amount_positive",
        "column": "amount",
        "check": "greater_than(0)",
        "severity": "error",
        "dimension": None,
        "threshold": "mustBe 0 rows",
        "description": "Amounts are > 0.",
    }
    assert amount["failures"] == 3 and amount["failure_rate"] == 0.03 and amount["value"] == 3
    assert amount["rows"] == 100
    assert amount["owner"] == {
        "team": "payments-features",
        "members": ["ana.ribeiro@example.com"],
        "roles": ["owner"],
        "support_channel": "#payments-features-oncall",
        "support_url": "https://example.com/slack/payments-features-oncall",
    }
    assert amount["contract"]["sha256"] == "a" * 64
    assert amount["topic"] == TOPIC
    assert [c["failure_case"] for c in amount["sample"]] == ["-5.0", "0.0", "-1.5"]
    assert amount["sample"][0] == {
        "failure_case": "-5.0",
        "schema_context": "Column",
        "column": "amount",
        "check": "greater_than(0)",
        "check_number": 0,
        "index": 3,
        "rule": "amount_positive",
    }
    for event in events:
        assert event.get_type() == EventType.RULE_VIOLATION
        assert event.get_source() == f"urn:qstreams:topic:{TOPIC}"
        assert event.get_subject() == TOPIC
        assert event.get_time() == END
        validate_event(event)


def test_rule_violations_sample_size() -> None:
    contract = _contract()
    events = {e.get_extension("rule"): event_data(e) for e in _violations(contract, _report(contract), sample_size=2)}
    assert len(events["channel_known"]["sample"]) == 2
    assert [c["index"] for c in events["channel_known"]["sample"]] == [0, 1]
    assert all(d["sample"] == [] for d in map(event_data, _violations(contract, _report(contract), sample_size=0)))


def test_rule_violations_none_when_all_pass_or_no_report() -> None:
    contract = _contract()
    assert _violations(contract, _passing_report(contract)) == []
    assert _violations(contract, None) == []


def test_classified_values_are_redacted_even_if_the_report_leaks_them() -> None:
    contract = _contract()
    events = _violations(contract, _report(contract, leak=True))
    card = next(event_data(e) for e in events if e.get_extension("rule") == "card_hash_format")
    assert [c["failure_case"] for c in card["sample"]] == ["[REDACTED]", "[REDACTED]"]
    for event in events:
        _, value, _ = to_kafka(event)
        assert SECRET.encode() not in value


def test_frame_level_cases_naming_a_classified_column_are_redacted() -> None:
    contract = _contract()
    check = FakeCheck(
        "email_or_card", None, "expression(email != card_hash)", Severity.INFO, 1, 0.01, False, 1, "mustBe 0 rows", None
    )
    cases = _cases([('{"email": "x@example.com"}', "DataFrameSchema", None, check.check, 4, "email_or_card")])
    report = dataclasses.replace(_passing_report(contract), checks=(check,), failure_cases=cases)
    (event,) = _violations(contract, report)
    assert event_data(event)["sample"][0]["failure_case"] == "[REDACTED]"
    assert event.get_extension("severity") == "info"
    validate_event(event)


def test_sample_drops_unknown_failure_case_columns() -> None:
    contract = _contract()
    report = _report(contract)
    extra = report.failure_cases.with_columns(pl.lit(SECRET).alias("raw_record"))
    events = _violations(contract, dataclasses.replace(report, failure_cases=extra))
    for event in events:
        for case in event_data(event)["sample"]:
            assert "raw_record" not in case


# --------------------------------------------------------------------------- schema drift


def test_schema_drift() -> None:
    contract = _contract()
    event = _drift(
        contract, unknown={"promo": 12, "zero": 0}, missing={"channel": 3, "amount": 1}, mismatch={"amount": 2}
    )
    data = event_data(event)
    assert data["unknown_fields"] == [{"field": "promo", "records": 12}]
    assert data["missing_fields"] == [
        {"field": "amount", "records": 1, "required": True},
        {"field": "channel", "records": 3, "required": False},
    ]
    assert data["type_mismatches"] == [{"field": "amount", "records": 2, "expected": "number"}]
    assert event.get_type() == EventType.SCHEMA_DRIFT
    assert event.get_extension("severity") == "error"
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
    event = lifecycle(
        "partitions_assigned", worker_id="host-1:4242", app_id="quality-streams", mode="gate",
        contracts=[contract], partitions=[(TOPIC, 2), (TOPIC, 0)], started_at=started, generation=7,
    )  # fmt: skip
    attrs = _attrs(event)
    assert attrs["type"] == EventType.WORKER_LIFECYCLE
    assert attrs["source"] == "urn:qstreams:worker:host-1:4242"
    assert attrs["subject"] == contract.id
    assert attrs["contractid"] == contract.id and attrs["severity"] == "info"
    assert attrs["time"].tzinfo is not None
    data = event_data(event)
    assert data["phase"] == "partitions_assigned"
    assert data["partitions"] == [{"topic": TOPIC, "partition": 0}, {"topic": TOPIC, "partition": 2}]
    assert data["contracts"][0]["schemas"] == [{"name": "card_transactions", "topic": TOPIC}]
    assert data["started_at"] == "2025-03-01T11:00:00Z" and data["generation"] == 7
    validate_event(event)
    again = lifecycle(
        "partitions_assigned", worker_id="host-1:4242", app_id="quality-streams", mode="gate",
        contracts=[contract], partitions=[(TOPIC, 0), (TOPIC, 2)], started_at=started, generation=7,
    )  # fmt: skip
    assert again.get_id() == event.get_id()
    later = lifecycle(
        "partitions_assigned", worker_id="host-1:4242", app_id="quality-streams", mode="gate",
        contracts=[contract], partitions=[(TOPIC, 0), (TOPIC, 2)], started_at=started, generation=8,
    )  # fmt: skip
    assert later.get_id() != event.get_id()


def test_lifecycle_phases_and_multiple_contracts() -> None:
    one, two = _contract(), dataclasses.replace(_contract(), id="urn:datacontract:ml:fraud-predictions")
    for phase in ("started", "stopped", "partitions_revoked"):
        event = lifecycle(phase, worker_id="w1", app_id="qs", mode="monitor", contracts=[one, two])
        assert event.get_subject() is None and event.get_extension("contractid") is None
        assert [c["id"] for c in event_data(event)["contracts"]] == sorted([one.id, two.id])
        validate_event(event)
    failed = lifecycle(
        "binding_failed", worker_id="w1", app_id="qs", mode="gate", contracts=[one], reason="topic does not exist"
    )
    assert failed.get_extension("severity") == "error"
    assert event_data(failed)["reason"] == "topic does not exist"
    validate_event(failed)
    first = lifecycle("started", worker_id="w1", app_id="qs", mode="gate", contracts=[one])
    second = lifecycle(
        "started", worker_id="w1", app_id="qs", mode="gate", contracts=[one], started_at=START + timedelta(hours=1)
    )
    assert first.get_id() != second.get_id()
    with pytest.raises(ValueError):
        lifecycle("exploded", worker_id="w1", app_id="qs", mode="gate", contracts=[one])


# --------------------------------------------------------------------------- deterministic ids


def test_ids_are_deterministic() -> None:
    contract = _contract()
    report = _report(contract)
    assert _summary(contract, report).get_id() == _summary(_contract(), _report(_contract())).get_id()
    # the order partitions are given in does not matter
    assert _summary(contract, report, {0: (40, 89), 1: (100, 149)}).get_id() == _summary(contract, report).get_id()
    assert [e.get_id() for e in _violations(contract, report)] == [e.get_id() for e in _violations(contract, report)]
    assert _drift(contract, unknown={"x": 1}).get_id() == _drift(contract, unknown={"x": 1}).get_id()


def test_ids_differ_by_batch_type_rule_and_contract() -> None:
    contract = _contract()
    report = _report(contract)
    base = _summary(contract, report).get_id()
    assert _summary(contract, report, {0: (40, 90), 1: (100, 149)}).get_id() != base
    assert _summary(contract, report, {0: (40, 89)}).get_id() != base
    assert _drift(contract).get_id() != base
    other = _contract(version="1.5.0")
    assert _summary(other, dataclasses.replace(report, contract_version="1.5.0")).get_id() != base
    moved = [e.get_id() for e in _violations(contract, report, offsets={0: (90, 139)})]
    assert set(moved).isdisjoint(e.get_id() for e in _violations(contract, report))


# --------------------------------------------------------------------------- Kafka codec


EXPECTED_HEADERS = [
    "ce_specversion",
    "ce_id",
    "ce_type",
    "ce_source",
    "ce_subject",
    "ce_time",
    "content-type",
    "ce_dataschema",
    "ce_contractid",
    "ce_contractversion",
    "ce_contractsha256",
    "ce_severity",
]


def test_to_kafka_binary_mode_headers_key_and_value() -> None:
    contract = _contract()
    event = _violations(contract, _report(contract))[0]
    key, value, headers = to_kafka(event)
    assert key == contract.id.encode()
    assert [name for name, _ in headers] == [*EXPECTED_HEADERS, "ce_rule"]
    h = dict(headers)
    assert h["content-type"] == b"application/json"
    assert h["ce_specversion"] == b"1.0"
    assert h["ce_type"] == b"io.qualitystreams.rule.violation.v1"
    assert h["ce_time"] == b"2025-03-01T12:00:03.250000Z"
    assert h["ce_rule"] == b"amount_positive"
    assert h["ce_id"] == event.get_id().encode()
    assert all(isinstance(v, bytes) for _, v in headers)
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
        lifecycle("started", worker_id="w1", app_id="qs", mode="gate", contracts=[contract]),
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
        key2, value2, headers2 = to_kafka(decoded)
        assert (key2, value2, headers2) == (key, value, headers)


def test_from_kafka_accepts_mappings_uppercase_names_and_structured_mode() -> None:
    contract = _contract()
    event = _summary(contract, _report(contract))
    key, value, headers = to_kafka(event)
    upper = {name.upper(): v for name, v in headers}
    assert from_kafka(None, value, upper).get_id() == event.get_id()
    assert from_kafka(key, value, [*headers, ("traceparent", None)]).get_type() == EventType.BATCH_SUMMARY
    structured = orjson.dumps({**_attrs(event), "data": event_data(event)}, option=orjson.OPT_UTC_Z)
    decoded = from_kafka(key, structured, [("content-type", b"application/cloudevents+json")])
    assert decoded.get_id() == event.get_id() and event_data(decoded) == event_data(event)
    with pytest.raises(ValueError, match="tombstone"):
        from_kafka(key, None, headers)


def test_lifecycle_key_without_single_contract_is_the_source() -> None:
    one, two = _contract(), dataclasses.replace(_contract(), id="urn:other")
    event = lifecycle("started", worker_id="w1", app_id="qs", mode="gate", contracts=[one, two])
    key, _, headers = to_kafka(event)
    assert key == b"urn:qstreams:worker:w1"
    assert "ce_contractid" not in dict(headers) and "ce_subject" not in dict(headers)


# --------------------------------------------------------------------------- validate_event


def test_validate_event_rejects_bad_events() -> None:
    contract = _contract()
    event = _summary(contract, _report(contract))
    broken = event_data(event) | {"counts": {"valid": -1, "quarantined": 0, "dead_lettered": 0}}
    with pytest.raises(jsonschema.ValidationError):
        validate_event(CloudEvent(_attrs(event), broken))
    missing = {k: v for k, v in event_data(event).items() if k != "offsets"}
    with pytest.raises(jsonschema.ValidationError):
        validate_event(CloudEvent(_attrs(event), missing))
    with pytest.raises(ValueError, match="dataschema"):
        validate_event(CloudEvent(_attrs(event) | {"dataschema": "urn:other"}, event_data(event)))
    with pytest.raises(ValueError, match="unknown quality event type"):
        validate_event(CloudEvent(_attrs(event) | {"type": "io.qualitystreams.policy.action.v1"}, event_data(event)))
    # data arriving as JSON text is parsed before validation
    validate_event(CloudEvent(_attrs(event), orjson.dumps(event_data(event)).decode()))


# --------------------------------------------------------------------------- the real report


def test_builders_accept_the_real_validation_report() -> None:
    report_module = pytest.importorskip("streams.validation.report")
    contract = _contract()
    fake = _report(contract, leak=True)
    checks = tuple(report_module.CheckResult(**dataclasses.asdict(c)) for c in fake.checks)
    report = report_module.ValidationReport(
        contract_id=contract.id,
        contract_version=contract.version,
        contract_sha256=contract.sha256,
        schema="card_transactions",
        rows=100,
        valid_rows=95,
        invalid_rows=5,
        passed=False,
        checks=checks,
        valid_mask=pl.Series([True] * 100),
        violations=pl.Series([[]] * 100, dtype=pl.List(pl.String)),
        failure_cases=fake.failure_cases,
    )
    summary = _summary(contract, report)
    validate_event(summary)
    violations = _violations(contract, report)
    assert len(violations) == 3
    for event in violations:
        validate_event(event)
        assert SECRET not in orjson.dumps(event_data(event)).decode()
