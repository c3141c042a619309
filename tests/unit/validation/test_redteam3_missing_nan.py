"""``missingValues`` counts NaN on a float column as null, as ``nullValues`` and ``required`` do.

Found by the third red-team pass: on a number property ``nullValues`` (and ``required``: pandera's
``nullable=False``) fail NaN, pandera's null on floats, but ``missingValues`` ("nulls, plus the listed
values") counted only true nulls, so one NaN was null to one rule and present to the other. The
independent computation is ``math.isnan`` and a plain loop.
"""

from __future__ import annotations

import math

import polars as pl
import pytest
from pandera.errors import SchemaErrors

from streams.contracts.loader import parse_contract

CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: urn:test:missing-nan
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - name: f
        logicalType: number
        quality:
          - {name: missing, type: library, metric: missingValues, arguments: {missingValues: [null, -1]}, mustBe: 0}
          - {name: nulls, type: library, metric: nullValues, mustBe: 0}
      - {name: n, logicalType: integer}
"""

F = [1.0, float("nan"), None, -1.0, 0.0, float("inf")]


def test_missing_values_count_nan_as_null_rules_agree() -> None:
    df = pl.DataFrame({"f": pl.Series(F, dtype=pl.Float64), "n": list(range(len(F)))})
    c = parse_contract(CONTRACT, path="t.yaml")
    report = c.validate(df)
    rows = {k.name: sorted(int(i) for i in report.cases_of(k.name, 100)["index"].to_list()) for k in report.checks}
    null = [i for i, v in enumerate(F) if v is None or math.isnan(v)]
    assert rows["nulls"] == null == [1, 2]
    assert rows["missing"] == sorted(null + [i for i, v in enumerate(F) if v == -1.0]) == [1, 2, 3]
    with pytest.raises(SchemaErrors) as info:
        c.to_pandera().validate(df, lazy=True)
    theirs = sorted(info.value.failure_cases["index"].to_list())
    assert theirs == sorted(int(i) for i in report.failure_cases["index"].to_list())
