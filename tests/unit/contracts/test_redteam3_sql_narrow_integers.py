"""SQL rules read integer columns narrower than 64 bits as BIGINT: their arithmetic does not wrap.

Found by the third red-team pass: polars SQL computes in the column's width, so on an Int8 column
``SELECT COUNT(*) FROM t WHERE hour + 100 < 0`` counted every ``hour = 100`` row (``-56``), and on Int32
columns (``physicalType: int``) ``SUM(quantity * unit_price)`` wrapped negative; SQL engines (DuckDB, where
datacontract-cli runs these queries) widen instead. The compiled pandera schema runs the same query. The
independent computation is Python's integer arithmetic.
"""

from __future__ import annotations

import polars as pl
import pytest

from streams.contracts.loader import parse_contract

CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: urn:test:sql-narrow
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - {name: hour, logicalType: integer, physicalType: int8}
      - {name: quantity, logicalType: integer, physicalType: int}
      - {name: unit_price, logicalType: integer, physicalType: int}
    quality:
      - {name: wrapped, type: sql, query: "SELECT COUNT(*) FROM t WHERE hour + 100 < 0", mustBeLessOrEqualTo: 1}
      - {name: revenue, type: sql, query: "SELECT SUM(quantity * unit_price) FROM t", mustBeGreaterThan: 0}
      - {name: grouped, type: sql, query: "SELECT COUNT(DISTINCT hour) FROM t WHERE hour = 100", mustBe: 1}
"""

H = [100, 23, 100, -128]
Q = [50_000, 3, 46_341, 1]
P = [50_000, 4, 46_341, 2**31 - 1]


def test_sql_arithmetic_on_narrow_integers_does_not_wrap() -> None:
    c = parse_contract(CONTRACT, path="t.yaml")
    df = pl.DataFrame(
        {
            "hour": pl.Series(H, dtype=pl.Int8),
            "quantity": pl.Series(Q, dtype=pl.Int32),
            "unit_price": pl.Series(P, dtype=pl.Int32),
        }
    )
    report = c.validate(df)
    values = {k.name: k.value for k in report.checks if k.name in ("wrapped", "revenue", "grouped")}
    assert values == {
        "wrapped": sum(h + 100 < 0 for h in H),
        "revenue": sum(q * p for q, p in zip(Q, P, strict=True)),
        "grouped": len({h for h in H if h == 100}),
    }
    assert values["wrapped"] == 1 and values["revenue"] > 2**31  # only -128 + 100; no sum wrapped negative
    assert report.passed
    c.to_pandera().validate(df, lazy=True)  # the reference agrees: nothing fails


@pytest.mark.parametrize("query", ["SELECT MAX(hour) FROM t", "SELECT COUNT(*) FROM t WHERE CAST(hour AS INTEGER) > 1"])
def test_other_queries_keep_their_meaning(query: str) -> None:
    c = parse_contract(CONTRACT.replace("SELECT COUNT(*) FROM t WHERE hour + 100 < 0", query), path="t.yaml")
    df = pl.DataFrame({"hour": pl.Series(H, dtype=pl.Int8), "quantity": [1] * 4, "unit_price": [1] * 4})
    value = next(k.value for k in c.validate(df).checks if k.name == "wrapped")
    assert value == (max(H) if "MAX" in query else sum(h > 1 for h in H))
