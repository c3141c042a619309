"""SQL rule functions compute what the contract's SQL dialect (DuckDB's) means by them.

Found by red team 10, with DuckDB as the oracle; the expected values here are computed in plain Python:

* ``LOG(b, x)`` is the logarithm of ``x`` in base ``b`` in DuckDB; polars SQL reads ``LOG(x, b)``, so the query ran
  with its arguments swapped (``LOG(2, 8)`` was 1/3, not 3). ``LOG(x)`` (DuckDB: base 10) could not run at all.
* ``POWER(n, k)`` on integers was computed in Int64 and wrapped (``POWER(2, 70)`` was 0); DuckDB's is a DOUBLE.
* ``VAR_POP`` and ``STDDEV_POP`` were allowed but polars SQL has neither: every batch got an error verdict. They
  are refused at load with ``file:line``, naming the sample variants that run.
"""

from __future__ import annotations

import math

import polars as pl
import pytest

from streams.contracts.loader import parse_contract
from streams.errors import StreamsError

HEAD = """
apiVersion: v3.1.0
kind: DataContract
id: urn:test:sql-functions
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - {name: x, logicalType: number}
      - {name: n, logicalType: integer}
      - {name: m, logicalType: integer, physicalType: int8}
    quality:
"""
FRAME = pl.DataFrame(
    {
        "x": pl.Series([8.0, 100.0, 0.5], dtype=pl.Float64),
        "n": pl.Series([2, 3, 10], dtype=pl.Int64),
        "m": pl.Series([2, 3, 10], dtype=pl.Int8),
    }
)


def _value(query: str) -> float | int | None:
    c = parse_contract(
        HEAD + f'      - {{name: r, type: sql, query: "{query}", mustBeGreaterThan: 0}}\n', path="c.yaml"
    )
    result = c.validate(FRAME).check("r")
    assert result.error is None, result.error
    return result.value


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT SUM(LOG(2, x)) FROM t", sum(math.log(v, 2) for v in (8.0, 100.0, 0.5))),
        ("SELECT MAX(LOG(n, x)) FROM t", max(math.log(x, b) for x, b in ((8.0, 2), (100.0, 3), (0.5, 10)))),
        ("SELECT SUM(LOG(x)) FROM t", sum(math.log10(v) for v in (8.0, 100.0, 0.5))),
        ("SELECT MAX(LN(x)) FROM t", math.log(100.0)),
    ],
)
def test_log_reads_its_base_first_as_duckdb(query: str, expected: float) -> None:
    assert _value(query) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT MAX(POWER(n, 70)) FROM t", math.pow(10, 70)),
        ("SELECT SUM(POWER(m, 20)) FROM t", sum(math.pow(v, 20) for v in (2, 3, 10))),
        ("SELECT MIN(n ** 64) FROM t", math.pow(2, 64)),
        ("SELECT MAX(POWER(x, 2)) FROM t", 10_000.0),
    ],
)
def test_power_is_a_double_as_duckdb(query: str, expected: float) -> None:
    got = _value(query)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("function", ["VAR_POP", "STDDEV_POP"])
def test_population_variance_is_refused_at_load(function: str) -> None:
    with pytest.raises(StreamsError, match=r"c\.yaml:\d+: .*" + function + r".* VARIANCE"):
        parse_contract(
            HEAD + f'      - {{name: r, type: sql, query: "SELECT {function}(x) FROM t", mustBe: 0}}\n', path="c.yaml"
        )
