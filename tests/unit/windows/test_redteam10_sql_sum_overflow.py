"""``SUM`` over integers does not wrap past 2⁶³: on a file, and on a window merged from partials.

Found by red team 10 (DuckDB as the oracle: its ``SUM(BIGINT)`` is a HUGEINT, exact): polars SQL summed an Int64
column in Int64 and wrapped, so ``SELECT SUM(amount_cents) FROM t`` over three values of 2⁶² was -2⁶² and a
``mustBeGreaterThan: 0`` rule failed a batch whose sum is 3·2⁶². On the stream ``AVG(x)`` (merged as a ``SUM`` and
a ``COUNT``) was also wrong where a file's ``AVG`` was right. A sum of integers is now exact (Int128), the window's
partials carry it through the internal topic's codec, and the expected values are Python's integers.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from streams.contracts.loader import parse_contract
from streams.contracts.model import Contract
from streams.contracts.stream import StreamSpec
from streams.validation.engine import compile_plan
from streams.windows.codec import Partial, decode, encode
from streams.windows.finalize import WindowVerdict, finalize
from streams.windows.partial import merge_all
from streams.windows.plan import RuleKind, WindowPlan
from streams.windows.stream import StreamConfig, StreamTime

CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: urn:test:sql-sum-overflow
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - {name: c, logicalType: integer}
      - {name: small, logicalType: integer, physicalType: int16}
    quality:
      - {name: total, type: sql, query: "SELECT SUM(c) FROM t", mustBeGreaterThan: 0}
      - {name: mean, type: sql, query: "SELECT AVG(c) FROM t", mustBeGreaterThan: 0}
      - {name: half, type: sql, query: "SELECT SUM(c) / 2 FROM t WHERE c > 0", mustBeGreaterThan: 0}
      - {name: small_total, type: sql, query: "SELECT SUM(small) FROM t", mustBeGreaterThan: 0}
"""
BIG = 2**62
SLICES = [[BIG, 1], [BIG] * 5, [BIG, -5]]  # the second partial sums past 2**64
SMALL = [[30_000, 1], [30_000] * 5, [30_000, 2]]


def _frame(cs: list[int], smalls: list[int]) -> pl.DataFrame:
    return pl.DataFrame({"c": pl.Series(cs, dtype=pl.Int64), "small": pl.Series(smalls, dtype=pl.Int16)})


def _expected() -> dict[str, float | int]:
    cs = [v for s in SLICES for v in s]
    return {
        "total": sum(cs),
        "mean": sum(cs) / len(cs),
        "half": sum(v for v in cs if v > 0) / 2,
        "small_total": sum(v for s in SMALL for v in s),
    }


def _window(c: Contract) -> tuple[WindowPlan, WindowVerdict]:
    plan = WindowPlan.of(c, c.schema(), StreamSpec(None, 60_000, 0, 3_600_000))
    st = StreamTime(plan, StreamConfig(60_000, 0, 1_000, 10**12, 3_600_000), len(SLICES))
    sent = []
    for part, (cs, smalls) in enumerate(zip(SLICES, SMALL, strict=True)):
        df = _frame(cs, smalls)
        out = st.process(
            c.validate(df), compile_plan(c).conform(df), np.full(len(cs), part), np.arange(len(cs)),
            np.full(len(cs), 1_000), now_ms=2_000,
        )  # fmt: skip
        sent += [decode(encode(r)) for r in out.records if isinstance(r, Partial)]
    window = merge_all(p.partial for p in sent)  # type: ignore[union-attr]
    assert window is not None
    return plan, finalize(plan, window)


@pytest.mark.parametrize("name", ["total", "mean", "half", "small_total"])
def test_a_file_sums_integers_exactly(name: str) -> None:
    c = parse_contract(CONTRACT, path="t.yaml")
    whole = c.validate(_frame([v for s in SLICES for v in s], [v for s in SMALL for v in s])).check(name)
    assert whole.error is None, whole.error
    assert whole.value == pytest.approx(_expected()[name], rel=1e-15)
    assert whole.passed


@pytest.mark.parametrize("name", ["total", "mean", "half", "small_total"])
def test_a_window_sums_integers_exactly(name: str) -> None:
    c = parse_contract(CONTRACT, path="t.yaml")
    plan, verdict = _window(c)
    assert next(r for r in plan.rules if r.rule.name == name).kind is RuleKind.SQL  # merged from partials
    got = verdict.check(name).result
    assert got.error is None, got.error
    assert got.value == pytest.approx(_expected()[name], rel=1e-15)
    assert got.passed
