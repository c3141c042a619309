"""Nested records on the stream (JSON, Arrow) and in files (Parquet structs, CSV dotted headers)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.contracts.loader import load_contract
from streams.contracts.model import Contract
from streams.pipeline.records import Message
from streams.testing.messages import run_batch

CONTRACT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:nested-records
version: 1.0.0
status: draft
schema:
  - name: orders
    properties:
      - {name: id, logicalType: integer, required: true}
      - name: customer
        logicalType: object
        required: true
        properties:
          - {name: email, logicalType: string, required: true, classification: pii}
          - name: address
            logicalType: object
            properties:
              - name: zip
                logicalType: string
                logicalTypeOptions: {pattern: '^[0-9]{5}$'}
              - {name: floor, logicalType: integer}
"""

VALID = {"id": 1, "customer": {"email": "a@x.org", "address": {"zip": "75001", "floor": 3}}}
CASES = [
    ("valid", VALID, set()),
    ("optional object absent", {"id": 2, "customer": {"email": "b@x.org"}}, set()),
    ("optional object null", {"id": 3, "customer": {"email": "c@x.org", "address": None}}, set()),
    ("missing nested field", {"id": 4, "customer": {"address": {"zip": "75001"}}}, {"customer.email:required"}),
    ("required object absent", {"id": 5}, {"customer.email:required"}),
    (
        "wrong nested type",
        {"id": 6, "customer": {"email": "d@x.org", "address": {"floor": "3"}}},
        {"customer.address.floor:dtype"},
    ),
    (
        "nested rule failing",
        {"id": 7, "customer": {"email": "e@x.org", "address": {"zip": "7500"}}},
        {"customer.address.zip:pattern"},
    ),
    # every field under a value that is not an object has the wrong type
    (
        "object of the wrong type",
        {"id": 8, "customer": "e@x.org"},
        {"customer.email:dtype", "customer.address.zip:dtype", "customer.address.floor:dtype"},
    ),
]


@pytest.fixture
def contract(tmp_path: Path) -> Contract:
    p = tmp_path / "c.yaml"
    p.write_text(CONTRACT)
    return load_contract(p)


def test_nested_json_records_are_routed_by_their_nested_fields(contract: Contract) -> None:
    values = [json.dumps(record).encode() for _, record, _ in CASES]
    messages = [Message("orders", 0, i, v) for i, v in enumerate(values)]
    result = run_batch(contract, messages)
    # valid records are forwarded byte for byte
    valid = [v for v, (_, _, rules) in zip(values, CASES, strict=True) if not rules]
    assert [r.value for r in result.validated] == valid
    quarantined = {r.value: dict(r.headers) for r in result.quarantined}
    expected = {v: rules for v, (_, _, rules) in zip(values, CASES, strict=True) if rules}
    assert set(quarantined) == set(expected)
    for value, rules in expected.items():
        assert set(quarantined[value]["qstreams.errors.rules"].decode().split(",")) == rules, value
    assert result.counts["dead_lettered"] == 0


def test_a_value_under_a_non_object_is_shown_as_found_and_pii_stays_redacted(contract: Contract) -> None:
    bad = {"id": 9, "customer": {"email": 12, "address": [1]}}
    result = run_batch(contract, [Message("orders", 0, 0, json.dumps(bad).encode())])
    report = result.report
    assert report is not None
    cases = report.failure_cases  # type: ignore[attr-defined]
    by_column = {row["column"]: row["failure_case"] for row in cases.to_dicts()}
    assert by_column["customer.email"] == "[REDACTED]"  # classification pii
    assert by_column["customer.address.zip"] == "[1]"  # what was found where `address` should be
    assert by_column["customer.address.floor"] == "[1]"


def _struct_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "customer": [
                {"email": "a@x.org", "address": {"zip": "75001", "floor": 3}},
                {"email": None, "address": {"zip": "75002", "floor": 1}},
                {"email": "c@x.org", "address": None},
                {"email": "d@x.org", "address": {"zip": "750", "floor": 2}},
            ],
        }
    )


def test_parquet_struct_columns_are_validated_by_path_through_the_cli(tmp_path: Path) -> None:
    contract = tmp_path / "c.yaml"
    contract.write_text(CONTRACT)
    data = tmp_path / "orders.parquet"
    _struct_frame().write_parquet(data)
    res = CliRunner().invoke(app, ["validate", str(data), "--contract", str(contract), "--format", "json"])
    assert res.exit_code == 1, res.output
    report = json.loads(res.stdout)
    failures = {c["name"]: c["failures"] for c in report["checks"] if c["failures"]}
    assert failures == {"customer.email:required": 1, "customer.address.zip:pattern": 1}
    assert report["passed"] is False


def test_parquet_struct_with_a_wrong_nested_type_fails_that_field(tmp_path: Path) -> None:
    contract = tmp_path / "c.yaml"
    contract.write_text(CONTRACT)
    data = tmp_path / "orders.parquet"
    pl.DataFrame({"id": [1], "customer": [{"email": "a@x.org", "address": {"zip": 75001, "floor": 3}}]}).write_parquet(
        data
    )
    res = CliRunner().invoke(app, ["validate", str(data), "--contract", str(contract), "--format", "json"])
    report = json.loads(res.stdout)
    failures = {c["name"]: c["failures"] for c in report["checks"] if c["failures"]}
    assert failures == {"customer.address.zip:dtype": 1}, res.output


def test_csv_dotted_headers_name_the_path(tmp_path: Path) -> None:
    contract = tmp_path / "c.yaml"
    contract.write_text(CONTRACT)
    data = tmp_path / "orders.csv"
    data.write_text("id,customer.email,customer.address.zip\n1,a@x.org,01234\n2,,75001\n")
    res = CliRunner().invoke(app, ["validate", str(data), "--contract", str(contract), "--format", "json"])
    report = json.loads(res.stdout)
    failures = {c["name"]: c["failures"] for c in report["checks"] if c["failures"]}
    assert failures == {"customer.email:required": 1}, res.output  # zip read as text: 01234 keeps its zero


def test_arrow_messages_with_struct_columns_are_read_by_path(contract: Contract) -> None:
    sink = io.BytesIO()
    table = _struct_frame().to_arrow()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    result = run_batch(contract, [Message("orders", 0, 0, sink.getvalue())])
    assert result.counts == {"valid": 2, "quarantined": 2, "dead_lettered": 0}
    assert result.rule_failures == {"customer.email:required": 1, "customer.address.zip:pattern": 1}


def test_sql_and_expression_rules_read_nested_fields_by_path(tmp_path: Path) -> None:
    contract = tmp_path / "c.yaml"
    contract.write_text(
        CONTRACT
        + "    quality:\n"
        + "      - {type: sql, query: 'SELECT COUNT(*) FROM orders WHERE \"customer.address.floor\" > 10', mustBe: 0}\n"
        + "      - {type: custom, engine: expression, implementation: customer.address.floor >= 0}\n"
    )
    data = tmp_path / "orders.ndjson"
    rows = [{"id": i, "customer": {"email": "a@x.org", "address": {"floor": f}}} for i, f in enumerate([11, -1, 2])]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = CliRunner().invoke(app, ["validate", str(data), "--contract", str(contract), "--format", "json"])
    assert res.exit_code == 1, res.output
    checks = {c["name"]: c for c in json.loads(res.stdout)["checks"]}
    assert checks["orders:sql#0"]["value"] == 1 and checks["orders:sql#0"]["error"] is None
    assert checks["orders:expression#1"]["failures"] == 1


ARRAYS = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:nested-arrays
version: 1.0.0
status: draft
schema:
  - name: orders
    properties:
      - {name: id, logicalType: integer, required: true}
      - {name: tags, logicalType: array, items: {logicalType: string}}
      - name: meta
        logicalType: object
        properties:
          - {name: scores, logicalType: array, items: {logicalType: integer}}
"""


def test_arrays_of_scalars_are_typed_element_by_element_top_level_and_nested(tmp_path: Path) -> None:
    """As many top-level keys as fields (id, tags, meta: 3) must not hide the nested path; an array's
    elements are not coerced (`"x"` is no list, `1` no string, `2.5` no integer)."""
    p = tmp_path / "c.yaml"
    p.write_text(ARRAYS)
    records = [
        ({"id": 1, "tags": ["a", None], "meta": {"scores": [1, 2.0, None]}}, set()),
        ({"id": 2, "tags": None, "meta": None}, set()),
        ({"id": 3, "tags": ["a", 1], "meta": {"scores": [1]}}, {"tags:dtype"}),
        ({"id": 4, "tags": "x", "meta": {"scores": [1]}}, {"tags:dtype"}),
        ({"id": 5, "tags": ["a"], "meta": {"scores": [1, 2.5]}}, {"meta.scores:dtype"}),
        ({"id": 6, "tags": ["a"], "meta": {"scores": "1"}}, {"meta.scores:dtype"}),
    ]
    values = [json.dumps(r).encode() for r, _ in records]
    result = run_batch(load_contract(p), [Message("orders", 0, i, v) for i, v in enumerate(values)])
    assert [r.value for r in result.validated] == [
        v for v, (_, rules) in zip(values, records, strict=True) if not rules
    ]
    got = {r.value: set(dict(r.headers)["qstreams.errors.rules"].decode().split(",")) for r in result.quarantined}
    assert got == {v: rules for v, (_, rules) in zip(values, records, strict=True) if rules}
