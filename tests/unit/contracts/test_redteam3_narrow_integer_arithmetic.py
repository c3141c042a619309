"""Arithmetic in ``engine: expression`` rules on integer columns narrower than 64 bits does not wrap.

Found by the third red-team pass: polars computes ``Int32 * Int32`` in Int32 and wraps, so with
``physicalType: int`` (Int32) ``quantity * unit_price <= 100000000`` passed ``50000 * 50000`` (2.5e9 wraps
to a negative number); ``x + 100 > 0`` failed an Int8 ``100`` (``-56``); ``x - 3 >= 0`` passed a UInt8 ``1``
(``254``). The compiled pandera schema runs the same polars expression, so both were wrong alike. An
expression means whole numbers (it is Python syntax): narrow integer columns are read as Int64 under
arithmetic. The independent computation is Python's integer arithmetic.
"""

from __future__ import annotations

import polars as pl
import pytest

from streams.contracts.loader import parse_contract
from streams.validation.pandera import from_pandera

CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: urn:test:narrow
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - {name: quantity, logicalType: integer, physicalType: int}
      - {name: unit_price, logicalType: integer, physicalType: int}
      - {name: x, logicalType: integer, physicalType: int8}
      - {name: u, logicalType: integer, physicalType: uint8}
    quality:
      - {name: total, type: custom, engine: expression, implementation: "quantity * unit_price <= 100000000"}
      - {name: shifted, type: custom, engine: expression, implementation: "x + 100 > 0"}
      - {name: room, type: custom, engine: expression, implementation: "u - 3 >= 0"}
      - {name: flipped, type: custom, engine: expression, implementation: "-x < 100 and abs(x) ** 2 < 10000"}
"""

Q = [50_000, 10, 46_341, None, 2]
P = [50_000, 10, 46_341, 5, 2**31 - 1]
X = [100, -100, 0, 99, -128]
U = [1, 3, 255, 0, 200]


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "quantity": pl.Series(Q, dtype=pl.Int32),
            "unit_price": pl.Series(P, dtype=pl.Int32),
            "x": pl.Series(X, dtype=pl.Int8),
            "u": pl.Series(U, dtype=pl.UInt8),
        }
    )


def _expected() -> dict[str, list[int]]:
    rows = range(len(X))
    return {
        "total": [i for i in rows if Q[i] is not None and not Q[i] * P[i] <= 100_000_000],  # type: ignore[operator]
        "shifted": [i for i in rows if not X[i] + 100 > 0],
        "room": [i for i in rows if not U[i] - 3 >= 0],
        "flipped": [i for i in rows if not (-X[i] < 100 and abs(X[i]) ** 2 < 10_000)],
    }


def test_narrow_integers_compute_as_whole_numbers() -> None:
    c = parse_contract(CONTRACT, path="t.yaml")
    report = c.validate(_frame())
    assert [k.error for k in report.checks] == [None] * len(report.checks)
    got = {k.name: sorted(int(i) for i in report.cases_of(k.name, 100)["index"].to_list()) for k in report.checks}
    expected = _expected()
    assert (
        {n: got[n] for n in expected}
        == expected
        == {
            "total": [0, 2, 4],
            "shifted": [1, 4],
            "room": [0, 3],
            "flipped": [0, 1, 4],
        }
    )


def test_pandera_agrees_and_labels_read_as_written() -> None:
    c = parse_contract(CONTRACT, path="t.yaml")
    report = c.validate(_frame())
    with pytest.raises(Exception) as info:
        c.to_pandera().validate(_frame(), lazy=True)
    cases = info.value.failure_cases  # type: ignore[attr-defined]
    key = ["check", "index", "failure_case"]
    assert sorted(cases.select(key).rows()) == sorted(report.failure_cases.select(key).rows())
    assert {k.check for k in report.checks if k.name == "total"} == {
        "expression(((quantity * unit_price) <= 100000000))"
    }
    back = from_pandera(c.to_pandera(), contract_id="x", version="1").schema()
    ours = sorted(repr(r.args) for r in c.schema().rules if r.op.value == "expression")
    assert sorted(repr(r.args) for r in back.rules if r.op.value == "expression") == ours
