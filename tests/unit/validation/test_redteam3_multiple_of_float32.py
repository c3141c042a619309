"""``multipleOf`` on a Float32 column (``physicalType: float32``) is judged on the decimals its values stand for.

Found by the third red-team pass: the quotient ``x / step`` was computed in Float32 and held to the Float64
tolerance (1e-12 relative), so most prices stored as float32 failed ``multipleOf: 0.01`` (``float32(19.99)``
is 19.9899997711…; 4,582 of 40,000 multiples of a cent failed, 29,079 of 40,000 multiples of 0.001). pandera
has no built-in ``multiple_of``: the compiled schema runs the engine's predicate, so both were wrong alike.

A Float32 value is a multiple when some multiple of the step reads back as it (rounds to it in float32). The
independent computation: exact decimal arithmetic, ``k * step`` for the nearest ``k``, rounded by numpy to
float32 and compared with the value.
"""

from __future__ import annotations

import decimal
from decimal import Decimal

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contracts.loader import parse_contract


def _contract(step: str) -> str:
    return f"""
apiVersion: v3.1.0
kind: DataContract
id: urn:test:multiple32
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - name: x
        logicalType: number
        physicalType: float32
        logicalTypeOptions: {{multipleOf: {step}}}
      - name: y
        logicalType: string
"""


def _reads_back(value: np.float32, step: str) -> bool:
    """Some ``k * step`` (exact decimal) rounds to ``value`` in float32."""
    if not np.isfinite(value):
        return False
    with decimal.localcontext() as ctx:
        ctx.prec = 80
        k = (Decimal(float(value)) / Decimal(step)).to_integral_value()
        return any(np.float32(str((k + d) * Decimal(step))) == value for d in (-1, 0, 1))


def _failing(step: str, values: list[np.float32]) -> tuple[list[int], list[int]]:
    c = parse_contract(_contract(step), path="t.yaml")
    df = pl.DataFrame({"x": pl.Series(np.array(values, dtype=np.float32)), "y": ["a"] * len(values)})
    assert df.schema["x"] == pl.Float32
    report = c.validate(df)
    ours = sorted(int(i) for i in report.failure_cases.filter(pl.col("column") == "x")["index"].to_list())
    try:
        c.to_pandera().validate(df, lazy=True)
        theirs: list[int] = []
    except Exception as exc:
        theirs = sorted(exc.failure_cases["index"].to_list())  # type: ignore[attr-defined]
    return ours, theirs


def test_prices_stored_as_float32_are_multiples_of_a_cent() -> None:
    texts = ["19.99", "0.07", "100.01", "0.29", "1.1", "-4.56", "9510.19", "0.295", "3.333", "9510.189"]
    values = [np.float32(t) for t in texts]
    ours, theirs = _failing("0.01", values)
    assert ours == theirs == [i for i, v in enumerate(values) if not _reads_back(v, "0.01")] == [7, 8, 9]


@pytest.mark.parametrize("step", ["0.01", "0.001", "0.05", "0.3"])
def test_many_multiples(step: str) -> None:
    rng = np.random.default_rng(7)
    ks = rng.integers(-(10**6), 10**6, 2000)
    values = [np.float32(str(Decimal(int(k)) * Decimal(step))) for k in ks]
    values += [np.float32(str(Decimal(int(k)) * Decimal(step) + Decimal(step) / 10)) for k in ks[:500]]
    values += [np.float32(v) for v in ("0", "-0.0", "nan", "inf", "-inf", "1e-45", "3e38")]
    ours, theirs = _failing(step, values)
    assert ours == theirs == [i for i, v in enumerate(values) if not _reads_back(v, step)]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["0.01", "0.1", "0.25", "0.001", "0.07"]), st.lists(st.floats(width=32), min_size=1, max_size=6))
def test_any_float32(step: str, raw: list[float]) -> None:
    values = [np.float32(v) for v in raw]
    ours, theirs = _failing(step, values)
    assert ours == theirs == [i for i, v in enumerate(values) if not _reads_back(v, step)]
