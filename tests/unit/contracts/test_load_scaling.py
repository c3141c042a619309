"""Compiling a contract costs time linear in its number of properties.

A 2,000-property contract took seconds to load, part of it quadratic: each property built a set of the names
declared before it (to refuse a repeat), each ``unique`` property searched every property for its own line,
and each SQL rule collected the narrow integers of every property. The count here is an operation count, not
a time: the lines of ``streams`` code executed while compiling the document (YAML parsing and the JSON
Schema check, library code, are linear and left out), for N and 4N properties of each kind.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

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
