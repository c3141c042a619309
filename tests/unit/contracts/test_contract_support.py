"""What the engine runs, what it refuses with `file:line: not supported: ...`, and what lint only notes."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.contracts.loader import lint_contract, load_contract
from streams.errors import ContractError

HEADER = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:support
version: 1.0.0
status: draft  # lint requires an owner and a support channel for contracts in use (issue 12)
"""
PROPS = "schema:\n  - name: t\n    properties:\n"


def write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(HEADER + textwrap.dedent(body))
    return p


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        (
            PROPS + "      - {name: a, logicalType: string}\n    quality:\n"
            "      - {metric: rowCount, mustBeGreaterThan: 5, unit: percent}\n",
            11,
            "not supported: rowCount with unit percent",
        ),
        (
            PROPS + "      - name: a\n        logicalType: array\n        items: {logicalType: string}\n"
            "        logicalTypeOptions: {minItems: 1}\n",
            12,
            "not supported: logicalTypeOptions.minItems",
        ),
        (
            PROPS + "      - name: a\n        logicalType: array\n        items: {logicalType: string}\n"
            "        logicalTypeOptions: {uniqueItems: true}\n",
            12,
            "not supported: logicalTypeOptions.uniqueItems",
        ),
        (
            PROPS + "      - name: a\n        logicalType: string\n        logicalTypeOptions: {format: email}\n",
            11,
            "not supported: logicalTypeOptions.format 'email'",
        ),
        (  # objects with properties are flattened (test_nested_objects.py); without, nothing is checked
            PROPS + "      - {name: a, logicalType: object}\n",
            9,
            "not supported: logicalType 'object' without `properties`",
        ),
        (
            PROPS + "      - name: a\n        logicalType: array\n        items:\n          logicalType: object\n",
            12,
            "not supported: an array of objects",
        ),
        (PROPS + "      - {name: a, logicalType: array}\n", 9, "not supported: an array without `items.logicalType`"),
        (PROPS + "      - {name: a, physicalType: geometry}\n", 9, "not supported: a property without logicalType"),
        (
            PROPS + "      - name: a\n        logicalType: timestamp\n"
            "        logicalTypeOptions: {timezone: true, defaultTimezone: Mars/Olympus}\n",
            11,
            "'Mars/Olympus' is not a known IANA time zone",
        ),
        (
            PROPS + "      - name: a\n        logicalType: timestamp\n"
            "        logicalTypeOptions: {defaultTimezone: Europe/Pariss}\n",
            11,
            "'Europe/Pariss' is not a known IANA time zone",
        ),
    ],
    ids=[
        "rowCount-percent",
        "minItems",
        "uniqueItems",
        "string-format",
        "nested-object",
        "array-of-objects",
        "array-without-items",
        "no-logical-type",
        "bad-time-zone",
        "bad-default-time-zone",
    ],
)
def test_constructs_we_do_not_run_are_refused_precisely(tmp_path: Path, body: str, line: int, fragment: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ContractError) as info:
        load_contract(path)
    assert str(info.value).startswith(f"{path}:{line}: "), str(info.value)
    assert fragment in str(info.value)
    findings = lint_contract(path)
    assert [(f.line, f.note) for f in findings] == [(line, False)]


def test_time_bounds_run_and_physical_type_implies_the_logical_type(tmp_path: Path) -> None:
    body = (
        PROPS + "      - name: at\n        logicalType: time\n"
        "        logicalTypeOptions: {minimum: '08:00:00', maximum: '18:00:00'}\n"
        "      - {name: code, physicalType: varchar(10)}\n"
    )
    contract = load_contract(write(tmp_path, body))
    s = contract.schema()
    assert s.field("code").dtype == pl.String() and s.field("code").logical_type == "string"
    df = pl.DataFrame({"at": [dt.time(9), dt.time(7), dt.time(19)], "code": ["a", "b", "c"]})
    report = contract.validate(df)
    by_name = {c.name: c for c in report.checks}
    assert (by_name["at:minimum"].failures, by_name["at:maximum"].failures) == (1, 1)
    assert by_name["at:minimum"].error is None


def test_notes_do_not_fail_lint(tmp_path: Path) -> None:
    body = (
        "slaProperties:\n  - {property: latency, value: 4, unit: d}\n"
        + PROPS
        + "      - name: day\n        logicalType: date\n        logicalTypeOptions: {format: yyyy-MM-dd}\n"
    )
    path = write(tmp_path, body)
    findings = lint_contract(path)
    assert [(f.line, f.note) for f in findings] == [(6, True), (13, True)]
    assert "slaProperties are not enforced" in findings[0].message
    assert "format is not checked" in findings[1].message
    res = CliRunner().invoke(app, ["contracts", "lint", str(path)])
    assert res.exit_code == 0, res.output
    assert f"{path}:6: note: slaProperties" in res.stdout


@pytest.mark.parametrize(
    "extra",
    [
        "roles:\n  - {role: reader, access: read}\n",
        "slaProperties:\n  - {property: retention, value: 3, unit: y}\n",
        "servers:\n  - {server: prod, type: kafka, host: broker:9092}\n",
    ],
    ids=["roles", "sla", "servers"],
)
def test_contracts_without_schema_objects_lint_as_documents(tmp_path: Path, extra: str) -> None:
    path = write(tmp_path, extra)
    findings = lint_contract(path)
    assert findings and all(f.note for f in findings), findings
    assert any("no schema objects" in f.message for f in findings)
    with pytest.raises(ContractError, match="nothing to validate or bind"):
        load_contract(path)


def test_relationships_are_noted_not_silently_ignored(tmp_path: Path) -> None:
    body = PROPS + (
        "      - name: customer_id\n        logicalType: string\n"
        "        relationships:\n          - {type: foreignKey, to: customers.id}\n"
    )
    findings = lint_contract(write(tmp_path, body))
    assert [(f.line, f.note) for f in findings] == [(11, True)]
    assert "relationships (foreign keys) are not checked" in findings[0].message
