"""Compiling a contract costs time linear in its number of properties.

A 2,000-property contract took seconds to load, part of it quadratic: each property built a set of the names
declared before it (to refuse a repeat), each ``unique`` property searched every property for its own line,
and each SQL rule collected the narrow integers of every property. The count here is an operation count, not
a time: the lines of ``streams`` code executed while compiling the document (YAML parsing and the JSON
Schema check, library code, are linear and left out), for N and 4N properties of each kind. Work done in C
(``set(fields)`` per expression or SQL rule, quadratic too) runs no line: it is counted as walks over the
properties.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

import polars as pl
import pytest

import streams
from streams.contracts import loader
from streams.contracts.source import SourceContext

ROOT = str(Path(streams.__file__).parent)


def _property(i: int, kind: str) -> dict[str, Any]:
    p: dict[str, Any] = {"name": f"f{i}", "logicalType": "integer", "physicalType": "int"}
    if kind == "unique":
        p["unique"] = True
    elif kind == "primary-key":
        p["primaryKey"] = True
    elif kind == "sql":
        p["quality"] = [{"type": "sql", "query": "SELECT COUNT(*) FROM t WHERE ${property} + 1 < 0", "mustBe": 0}]
    elif kind == "expression":
        p["quality"] = [{"type": "custom", "engine": "expression", "implementation": f"f{i} >= 0 and f0 in [1, 2]"}]
    elif kind == "nested":
        p = {
            "name": f"o{i}",
            "logicalType": "object",
            "properties": [{"name": "x", "logicalType": "integer", "unique": True}],
        }
    return p


def _lines_executed(n: int, kind: str) -> int:
    """Lines of ``streams`` code run while compiling a document of ``n`` properties of ``kind``."""
    data = {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": "urn:test:scaling",
        "version": "1.0.0",
        "status": "draft",
        "schema": [{"name": "t", "properties": [_property(i, kind) for i in range(n)]}],
    }
    lines: Counter[str] = Counter()

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            lines[frame.f_code.co_filename] += 1
        return local

    def calls(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename.startswith(ROOT) else None

    sys.settrace(calls)
    try:
        contract = loader._build(data, SourceContext({}, "t.yaml"))
    finally:
        sys.settrace(None)
    assert len(contract.schemas[0].fields) == n
    return sum(lines.values())


@pytest.mark.parametrize("kind", ["plain", "unique", "primary-key", "sql", "expression", "nested"])
def test_compiling_is_linear_in_the_number_of_properties(kind: str) -> None:
    small, large = _lines_executed(200, kind), _lines_executed(800, kind)
    assert small > 200  # the tracer saw the compilation
    assert large / small < 5, (kind, small, large)  # 4x the properties: 4x the work (quadratic was 10x and more)


class _CountingFields(dict[str, Any]):
    """The properties of an object, counting every walk over all of them (``set(fields)`` walks them in C, where
    the line count above cannot see it)."""

    walks = 0

    def __iter__(self) -> Any:
        type(self).walks += 1
        return super().__iter__()

    def keys(self) -> Any:
        type(self).walks += 1
        return super().keys()


@pytest.mark.parametrize(
    "q",
    [
        {"type": "sql", "query": "SELECT COUNT(*) FROM t WHERE f7 + f1 < 0", "mustBe": 0},
        {"type": "custom", "engine": "expression", "implementation": "f7 >= 0 and f1 in [1, 2]"},
    ],
    ids=["sql", "expression"],
)
@pytest.mark.parametrize("level", ["property", "object"])
def test_a_rule_looks_its_columns_up_without_walking_every_property(q: dict[str, Any], level: str) -> None:
    from streams.contracts.model import Field
    from streams.contracts.rules import quality_rule

    fields = _CountingFields(
        {f"f{i}": Field(name=f"f{i}", logical_type="integer", dtype=pl.Int32, line=i) for i in range(500)}
    )
    names = frozenset(fields)
    _CountingFields.walks = 0
    rule = quality_rule(
        q,
        ("schema", 0, "quality", 0),
        SourceContext({}, "t.yaml"),
        column="f7" if level == "property" else None,
        field=fields["f7"] if level == "property" else None,
        obj_name=None if level == "property" else "t",
        fields=fields,
        table="t",
        columns=names if level == "property" else (),
    )
    assert rule is not None and rule.name.startswith("f7:" if level == "property" else "t:")
    assert _CountingFields.walks == 0  # a walk per rule made loading quadratic in the number of properties
