"""Loading ODCS contracts: the IR, line numbers in errors, and what is refused."""

from __future__ import annotations

import textwrap
from pathlib import Path

import polars as pl
import pytest

from streams.contracts.loader import lint_contract, load_contract, load_contracts, parse_contract
from streams.contracts.model import Classification, Op, Severity, Threshold, Unit
from streams.errors import ContractSchemaError, ContractSyntaxError, UnsupportedRuleError

ROOT = Path(__file__).resolve().parents[3]
FEATURES = ROOT / "contracts" / "card_transactions.odcs.yaml"
PREDICTIONS = ROOT / "contracts" / "fraud_predictions.odcs.yaml"

HEADER = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:orders
version: 1.0.0
status: active
"""


def contract(body: str) -> str:
    return HEADER + textwrap.dedent(body)


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_example_contracts_load_with_owner_topic_and_rules() -> None:
    c = load_contract(FEATURES)
    s = c.schema()
    assert c.ref == "urn:datacontract:payments:card-transactions@1.4.0"
    assert s.topic == "features.card-transactions.v1"
    assert len(s.fields) == 24
    assert c.owner.team == "payments-features"
    assert c.owner.support_channel == "#payments-features-oncall"
    assert s.field("card_hash").classification is Classification.RESTRICTED
    assert s.field("customer_email").redacted
    assert s.field("event_ts").dtype == pl.Datetime("ms", "UTC")
    assert s.field("hour_of_day").dtype == pl.Int8()
    assert s.field("device_trust_score").dtype == pl.Float32()
    rules = {r.name: r for r in s.rules}
    assert rules["amount:exclusiveMinimum"].check == "greater_than(0)"
    assert rules["velocity_consistent"].op is Op.EXPRESSION
    assert rules["high_value_share"].op is Op.SQL and not rules["high_value_share"].gates_rows
    assert rules["customer_email_format"].severity is Severity.WARNING
    assert rules["device_id_completeness"].threshold == Threshold("mustBeLessThan", 50.0, Unit.PERCENT)
    # NO must stay a country, not YAML 1.1's boolean
    assert "NO" in rules["merchant_country_known"].args[0]
    assert load_contract(PREDICTIONS).schema().topic == "predictions.card-fraud.v1"
    assert {x.id for x in load_contracts(ROOT / "contracts")} == {c.id, load_contract(PREDICTIONS).id}


def test_sha256_is_over_canonical_content_not_formatting() -> None:
    a = parse_contract(contract("schema:\n  - name: t\n    properties:\n      - {name: a, logicalType: integer}\n"))
    b = parse_contract(
        contract("# comment\nschema:\n  - name: t\n    properties:\n      - name: a\n        logicalType: integer\n")
    )
    c = parse_contract(contract("schema:\n  - name: t\n    properties:\n      - {name: a, logicalType: number}\n"))
    assert a.sha256 == b.sha256 != c.sha256
    assert len(a.sha256) == 64


def test_several_schema_objects_bound_by_physical_name() -> None:
    c = parse_contract(
        contract(
            """\
            schema:
              - name: orders
                physicalName: shop.orders.v1
                properties: [{name: id, logicalType: string, required: true}]
              - name: refunds
                physicalName: shop.refunds.v1
                properties: [{name: id, logicalType: string}]
            """
        )
    )
    assert [s.topic for s in c.schemas] == ["shop.orders.v1", "shop.refunds.v1"]
    assert c.schema("shop.refunds.v1").name == "refunds"
    with pytest.raises(KeyError, match="several schema objects"):
        c.schema()


@pytest.mark.parametrize(
    ("body", "error", "line", "fragment"),
    [
        (
            "schema:\n  - name: t\n    properties:\n      - name: a\n       logicalType: x\n",
            ContractSyntaxError,
            10,
            "YAML",
        ),
        ("schema:\n  - name: t\n    propertys: []\n", ContractSchemaError, 8, "propertys"),
        (
            "schema:\n  - name: t\n    properties:\n      - name: a\n        logicalType: integer\n"
            "        logicalTypeOptions:\n          minimun: 3\n",
            ContractSchemaError,
            12,
            "minimun",
        ),
        (
            "schema:\n  - name: t\n    properties:\n      - name: a\n        logicalType: string\n"
            "        quality:\n          - type: custom\n            engine: pandera\n"
            "            implementation: \"__import__('os').system('echo pwned')\"\n",
            UnsupportedRuleError,
            14,
            "is not an allowed pandera check",
        ),
        (
            "schema:\n  - name: t\n    properties:\n      - name: a\n        logicalType: string\n"
            "        quality:\n          - type: custom\n            engine: pandera\n"
            '            implementation: "Check(lambda s: s > 0)"\n',
            UnsupportedRuleError,
            14,
            "pandera check",
        ),
        (
            "schema:\n  - name: t\n    properties:\n      - name: a\n        logicalType: string\n"
            "        quality:\n          - type: custom\n            engine: soda\n            implementation: x\n",
            UnsupportedRuleError,
            13,
            "not supported: custom engine 'soda'",
        ),
        (
            "schema:\n  - name: t\n    properties:\n      - name: a\n        logicalType: integer\n"
            "    quality:\n      - type: custom\n        engine: expression\n"
            '        implementation: "a.__class__ == 1"\n',
            UnsupportedRuleError,
            14,
            "not allowed",
        ),
        (
            "schema:\n  - name: t\n    properties:\n      - name: a\n        logicalType: integer\n"
            "        quality:\n          - metric: nullValues\n",
            ContractSchemaError,
            12,
            "threshold operator",
        ),
        (
            "schema:\n  - name: t\n    properties:\n      - name: a\n        logicalType: object\n",
            UnsupportedRuleError,
            10,
            "object",
        ),
    ],
)
def test_bad_contracts_name_file_line_and_what_is_supported(
    tmp_path: Path, body: str, error: type[Exception], line: int, fragment: str
) -> None:
    path = write(tmp_path, HEADER + body)
    with pytest.raises(error) as info:
        load_contract(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}:{line}: "), msg
    assert fragment in msg
    findings = lint_contract(path)
    assert findings and findings[0].line == line


def test_missing_required_top_level_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "apiVersion: v3.1.0\nkind: DataContract\nid: x\nschema: []\n")
    findings = lint_contract(path)
    assert any("version" in f.message for f in findings)


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ContractSyntaxError, match="empty"):
        load_contract(write(tmp_path, ""))
    with pytest.raises(ContractSchemaError):
        load_contract(write(tmp_path, "- a\n- b\n", "list.yaml"))


def test_pandera_custom_checks_are_parsed_not_evaluated() -> None:
    c = parse_contract(
        contract(
            """\
            schema:
              - name: t
                properties:
                  - name: p
                    logicalType: number
                    quality:
                      - {type: custom, engine: pandera, implementation: "Check.in_range(0, 1, include_max=False)"}
                      - {type: custom, engine: pandera, implementation: "pa.Check.isin([1.0, 2.0])", severity: warning}
                  - name: s
                    logicalType: string
                    quality:
                      - {type: custom, engine: pandera, implementation: "Check.str_length(1, 64)"}
            """
        )
    )
    rules = [r for r in c.schema().rules if r.source == "custom"]
    assert [(r.op, r.args) for r in rules] == [
        (Op.IN_RANGE, (0, 1, True, False)),
        (Op.ISIN, ((1.0, 2.0),)),
        (Op.STR_LENGTH, (1, 64)),
    ]
    assert rules[1].severity is Severity.WARNING and not rules[1].gates_rows
    assert [r.check for r in rules] == ["in_range(0, 1)", "isin([1.0, 2.0])", "str_length(1, 64)"]


def test_thresholds_and_units() -> None:
    assert Threshold().zero_tolerance
    assert Threshold("mustBeLessThan", 1).zero_tolerance
    assert not Threshold("mustBeLessThan", 5, Unit.PERCENT).zero_tolerance
    assert Threshold("mustBeBetween", (1, 10)).allows(10)
    assert not Threshold("mustNotBeBetween", (1, 10)).allows(5)
    assert Threshold("mustBeGreaterOrEqualTo", 3).allows(3)
    assert not Threshold("mustNotBe", 0).allows(0)


def test_schema_derived_rules_are_always_errors_and_primary_key_implies_required_unique() -> None:
    c = parse_contract(
        contract("schema:\n  - name: t\n    properties:\n      - {name: id, logicalType: string, primaryKey: true}\n")
    )
    ops = {r.op: r for r in c.schema().rules}
    assert {Op.DTYPE, Op.NOT_NULL, Op.UNIQUE} <= set(ops)
    assert all(r.severity is Severity.ERROR and r.gates_rows for r in ops.values())


PROPERTY = "schema:\n  - name: t\n    properties:\n      - name: a\n        logicalType: string\n"


@pytest.mark.parametrize(
    ("body", "line", "expected", "not_expected"),
    [
        # a bad metric name: the correct keys beside it are not "unknown"
        (
            PROPERTY + "        quality:\n          - metric: nullValue\n            mustBeLessThan: 1\n",
            12,
            ["'nullValue' is not one of", "did you mean 'nullValues'"],
            ["unknown field", "'mustBeLessThan'"],
        ),
        # a typo'd key next to correct ones: only the typo is named
        (
            PROPERTY + "        nullValue: 1\n        required: true\n",
            11,
            ["unknown field 'nullValue'"],
            ["'required',", "'logicalType',"],
        ),
        # a typo'd threshold operator is named, with a suggestion
        (
            PROPERTY + "        quality:\n          - metric: nullValues\n            mustBeLessThen: 1\n",
            13,
            ["unknown field 'mustBeLessThen'", "did you mean 'mustBeLessThan'"],
            ["exactly one threshold operator"],
        ),
        # an empty description is reported as empty, not `name` as unknown
        (
            "schema:\n  - name: t\n    description:\n    properties:\n      - {name: a, logicalType: string}\n",
            8,
            ["schema.0.description is empty"],
            ["unknown field", "'name'"],
        ),
    ],
    ids=["bad-metric", "typo-key", "mustBeLessThen", "empty-description"],
)
def test_schema_findings_name_the_actual_mistake(
    tmp_path: Path, body: str, line: int, expected: list[str], not_expected: list[str]
) -> None:
    findings = lint_contract(write(tmp_path, HEADER + body))
    assert len(findings) == 1, findings
    (finding,) = findings
    assert finding.line == line
    for fragment in expected:
        assert fragment in finding.message, finding.message
    for fragment in not_expected:
        assert fragment not in finding.message.split("allowed here")[0], finding.message


def test_a_key_only_another_variant_allows_is_still_an_error(tmp_path: Path) -> None:
    body = (
        "servers:\n  - {server: local-json, type: local, path: ./x.json, format: json, delimiter: new_line}\n"
        + PROPERTY
    )
    findings = lint_contract(write(tmp_path, HEADER + body))
    assert [f.line for f in findings] == [7], findings
    assert "field 'delimiter' is not allowed in servers.0" in findings[0].message
