"""Nested `logicalType: object` properties: flattened to fields named by their dotted path."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from streams.contracts.loader import lint_contract, load_contract
from streams.contracts.model import Classification, Op
from streams.errors import ContractError

HEADER = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:nested
version: 1.0.0
status: draft
schema:
  - name: orders
    properties:
"""

NESTED = """\
      - {name: id, logicalType: integer, required: true}
      - name: customer
        logicalType: object
        required: true
        classification: pii
        properties:
          - {name: email, logicalType: string, required: true}
          - {name: tier, logicalType: string, classification: public}
          - name: address
            logicalType: object
            properties:
              - name: zip
                logicalType: string
                required: true
                logicalTypeOptions: {pattern: '^[0-9]{5}$'}
              - name: country
                logicalType: string
                quality:
                  - {metric: invalidValues, mustBe: 0, arguments: {validValues: [FR, DE]}}
      - name: meta
        logicalType: object
        properties:
          - {name: source, logicalType: string, required: true}
          - {name: tags, logicalType: array, items: {logicalType: string}}
"""


def write(tmp_path: Path, props: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(HEADER + props)
    return p


def test_nested_properties_are_fields_named_by_their_path(tmp_path: Path) -> None:
    s = load_contract(write(tmp_path, NESTED)).schema()
    assert s.columns == (
        "id",
        "customer.email",
        "customer.tier",
        "customer.address.zip",
        "customer.address.country",
        "meta.source",
        "meta.tags",
    )
    assert s.field("customer.address.zip").dtype == pl.String()
    assert s.field("meta.tags").dtype == pl.List(pl.String())
    # each field carries the line of its own declaration
    assert [s.field(n).line for n in ("customer.email", "customer.tier", "customer.address.zip", "meta.source")] == [
        15,
        16,
        20,
        31,
    ]


def test_a_nested_field_is_required_only_when_every_ancestor_is(tmp_path: Path) -> None:
    s = load_contract(write(tmp_path, NESTED)).schema()
    required = {f.name: f.required for f in s.fields}
    assert required == {
        "id": True,
        "customer.email": True,  # required inside a required object
        "customer.tier": False,
        "customer.address.zip": False,  # required, but its `address` is optional
        "customer.address.country": False,
        "meta.source": False,  # required, but `meta` is optional
        "meta.tags": False,
    }
    not_null = {r.column for r in s.rules if r.op is Op.NOT_NULL}
    assert not_null == {"id", "customer.email"}


def test_classification_is_inherited_and_never_loosened(tmp_path: Path) -> None:
    s = load_contract(write(tmp_path, NESTED)).schema()
    assert s.field("customer.email").classification is Classification.PII
    assert s.field("customer.address.zip").classification is Classification.PII  # two levels down
    assert s.field("customer.tier").classification is Classification.PII  # `public` inside pii stays redacted
    assert s.field("meta.source").classification is None
    assert {"customer.email", "customer.tier", "customer.address.zip"} <= s.redacted_columns


def test_nested_rules_name_the_path_and_their_line(tmp_path: Path) -> None:
    s = load_contract(write(tmp_path, NESTED)).schema()
    rules = {r.name: r for r in s.rules}
    assert rules["customer.address.zip:pattern"].column == "customer.address.zip"
    assert rules["customer.address.zip:pattern"].line == 23
    assert rules["customer.address.country:invalidValues"].op is Op.ISIN
    assert rules["customer.address.country:invalidValues"].line == 27


@pytest.mark.parametrize(
    ("props", "line", "fragment"),
    [
        ("      - {name: customer.id, logicalType: string}\n", 9, "contains a dot"),
        (
            "      - name: customer\n        logicalType: object\n        properties:\n"
            "          - {name: a.b, logicalType: string}\n",
            12,
            "contains a dot",
        ),
        (
            "      - name: customer\n        logicalType: object\n        properties:\n"
            "          - {name: id, logicalType: string}\n          - {name: id, logicalType: integer}\n",
            13,
            "path customer.id",
        ),
        (
            "      - {name: customer, logicalType: string}\n      - name: customer\n        logicalType: object\n"
            "        properties:\n          - {name: id, logicalType: string}\n",
            10,
            "declared twice",
        ),
        ("      - {name: customer, logicalType: object}\n", 9, "not supported: logicalType 'object' without"),
        (
            "      - name: customer\n        logicalType: object\n        properties:\n"
            "          - {name: id, logicalType: string}\n        quality:\n"
            "          - {metric: rowCount, mustBeGreaterThan: 0}\n",
            13,
            "not supported: quality on an object property",
        ),
        (
            "      - name: customer\n        logicalType: object\n        logicalTypeOptions: {maxProperties: 3}\n"
            "        properties:\n          - {name: id, logicalType: string}\n",
            11,
            "not supported: logicalTypeOptions on an object property",
        ),
        (
            "      - name: orders\n        logicalType: array\n        items:\n          logicalType: object\n"
            "          properties:\n            - {name: sku, logicalType: string}\n",
            12,
            "not supported: an array of objects",
        ),
    ],
    ids=["dot", "nested-dot", "clash", "clash-scalar-object", "no-properties", "quality", "options", "array-of-obj"],
)
def test_what_nesting_cannot_express_is_refused_with_file_line(
    tmp_path: Path, props: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, props)
    with pytest.raises(ContractError) as info:
        load_contract(path)
    assert str(info.value).startswith(f"{path}:{line}: "), str(info.value)
    assert fragment in str(info.value)
    assert [(f.line, f.note) for f in lint_contract(path)] == [(line, False)]


def test_a_required_object_without_a_required_property_is_noted(tmp_path: Path) -> None:
    props = (
        "      - name: customer\n        logicalType: object\n        required: true\n        properties:\n"
        "          - {name: tier, logicalType: string}\n"
    )
    path = write(tmp_path, props)
    findings = lint_contract(path)
    assert [(f.line, f.note) for f in findings] == [(11, True)], findings
    assert "declares no required property" in findings[0].message
    # with a required property inside, nothing to note
    assert lint_contract(write(tmp_path, NESTED)) == []
