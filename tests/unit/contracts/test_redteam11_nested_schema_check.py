"""Red team 11: the ODCS JSON Schema check of nested properties was exponential in the nesting depth.

jsonschema re-evaluates a property's children for every ``if``/``then`` branch of the ODCS schema that
``unevaluatedProperties`` looks at, so each level of nested objects (which the compiler supports 16 deep)
tripled the work: six levels took seconds, eight minutes — a hang of ``qstreams contracts lint`` in CI.
The work is counted here (jsonschema ``descend`` calls), not timed.
"""

from __future__ import annotations

from typing import Any

import pytest

from streams.contracts import odcs_schema
from streams.contracts.loader import parse_contract
from streams.contracts.source import compose

HEAD = """apiVersion: v3.1.0
kind: DataContract
id: urn:x
version: 1.0.0
status: draft
schema:
  - name: t
    properties:
      - name: a
        logicalType: object
"""


def nested(depth: int, leaf: str = "{name: y, logicalType: integer}") -> str:
    inner = "[{name: x, logicalType: object, properties: " * depth + f"[{leaf}]" + "}]" * depth
    return HEAD + f"        properties: {inner}\n"


def descends(text: str, monkeypatch: pytest.MonkeyPatch) -> int:
    data, lines = compose(text, "c.yaml")
    cls = type(odcs_schema._validator("v3.1.0"))
    calls = 0
    original = cls.descend

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(self, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(cls, "descend", counting)
        assert odcs_schema.schema_findings(data, lines, "c.yaml") == []
    return calls


def test_schema_check_work_grows_linearly_with_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    shallow, deep = descends(nested(3), monkeypatch), descends(nested(6), monkeypatch)
    assert deep < 3 * shallow, (shallow, deep)  # twice the nodes: about twice the work (it was 27 times)


def test_a_contract_nested_ten_deep_loads() -> None:
    contract = parse_contract(nested(10), "c.yaml")
    assert [f.name for f in contract.schemas[0].fields] == ["a." + "x." * 10 + "y"]


def test_a_bad_key_deep_inside_is_reported_once_at_its_line() -> None:
    text = nested(4, "{name: y, logicalType: integer, colour: red}")
    data, lines = compose(text, "c.yaml")
    findings = odcs_schema.schema_findings(data, lines, "c.yaml")
    # the parents' echo ("field 'properties' is not allowed ... as written") is not reported
    assert [(f.line, f.message.split(";")[0]) for f in findings] == [
        (11, "unknown field 'colour' in schema.0.properties.0" + ".properties.0" * 5)
    ]


def test_a_bad_array_item_deep_inside_keeps_its_place() -> None:
    text = nested(2, "{name: y, logicalType: array, items: {logicalType: integer, logicalTypeOptions: {maxLength: 3}}}")
    data, lines = compose(text, "c.yaml")
    findings = odcs_schema.schema_findings(data, lines, "c.yaml")
    assert [f.message.split(";")[0] for f in findings] == [
        "unknown field 'maxLength' in schema.0.properties.0.properties.0.properties.0.properties.0.items"
        ".logicalTypeOptions"
    ]
