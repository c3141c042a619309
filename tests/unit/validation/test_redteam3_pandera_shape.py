"""The engine's failure cases have pandera's shape where the contract-level differential found they did not.

Found by the third red-team pass (a differential harness: random ODCS contracts and adversarial frames,
``Contract.validate`` against ``Contract.to_pandera().validate(lazy=True)``):

* a property with two zero-tolerance error rules of the same kind (``required: true`` and a
  ``nullValues`` rule; ``unique: true`` and a ``duplicateValues`` rule; two ``duplicateValues``) became one
  pandera attribute (``nullable=False`` / ``unique=True``), reported once per row, while the engine reported
  each rule: 2 cases a row against pandera's 1. The second such rule is now a Check of its own, with its own
  ``check_number``, in both.
* a frame-level case (a row-level expression, a composite key) renders the row as JSON; pandera renders it from
  the rows' Python values, so a Float32 ``19.99`` shows as ``19.989999771118164``; the engine showed ``19.99``.

The reference is pandera itself, run on the compiled schema.
"""

from __future__ import annotations

from collections import Counter

import polars as pl
import pytest
from pandera.errors import SchemaErrors

from streams.contracts.loader import parse_contract

HEADER = """
apiVersion: v3.1.0
kind: DataContract
id: urn:test:shape
version: 1.0.0
status: active
schema:
  - name: t
    properties:
"""
KEY = ["schema_context", "column", "check", "check_number", "index", "failure_case"]


def _both(text: str, df: pl.DataFrame) -> tuple[Counter, Counter]:
    c = parse_contract(HEADER + text, path="t.yaml")
    ours = Counter(c.validate(df).failure_cases.select(KEY).iter_rows())
    with pytest.raises(SchemaErrors) as info:
        c.to_pandera().validate(df, lazy=True)
    cases = info.value.failure_cases.filter(
        ~((pl.col("check") == "field_uniqueness") & pl.col("failure_case").is_null())
    )
    return ours, Counter(cases.select(KEY).iter_rows())


def test_required_and_null_values_rule_are_two_checks() -> None:
    text = """
      - name: a
        logicalType: boolean
        required: true
        quality: [{name: no_nulls, type: library, metric: nullValues, mustBe: 0}]
      - {name: b, logicalType: integer}
"""
    ours, theirs = _both(
        text, pl.DataFrame({"a": [None, True, None], "b": [1, 2, 3]}, schema={"a": pl.Boolean, "b": pl.Int64})
    )
    assert ours == theirs
    assert sorted((k for k in ours if k[2] == "not_nullable"), key=repr) == [
        ("Column", "a", "not_nullable", 0, 0, None),
        ("Column", "a", "not_nullable", 0, 2, None),
        ("Column", "a", "not_nullable", None, 0, None),
        ("Column", "a", "not_nullable", None, 2, None),
    ]


def test_two_duplicate_values_rules_are_two_checks() -> None:
    text = """
      - name: a
        logicalType: number
        unique: true
        quality: [{name: dup, type: library, metric: duplicateValues, mustBe: 0}]
      - {name: b, logicalType: integer}
"""
    df = pl.DataFrame({"a": [1.5, 1.5, 2.0, None, None], "b": [1, 2, 3, 4, 5]})
    ours, theirs = _both(text, df)
    assert ours == theirs
    assert sorted(((k[3], k[4]) for k in ours if k[2] == "field_uniqueness"), key=repr) == [
        (0, 0),
        (0, 1),
        (None, 0),
        (None, 1),
    ]


def test_float32_in_a_row_renders_as_pandera_does() -> None:
    text = """
      - {name: f, logicalType: number, physicalType: float32}
      - {name: n, logicalType: integer}
    quality:
      - {type: custom, engine: expression, implementation: "n > 0"}
"""
    df = pl.DataFrame({"f": pl.Series([19.99, 0.1], dtype=pl.Float32), "n": [0, 1]})
    ours, theirs = _both(text, df)
    assert ours == theirs
    [case] = [k for k in ours if k[0] == "DataFrameSchema"]
    double = float(pl.Series([19.99], dtype=pl.Float32)[0])
    assert case[5] == '{"f":19.989999771118164,"n":0}' == f'{{"f":{double!r},"n":0}}'
