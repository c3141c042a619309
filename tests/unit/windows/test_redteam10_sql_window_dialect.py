"""A mergeable SQL rule judged on a window computes what the same query gives on the window's records as one frame.

Found by red team 10 (DuckDB as the oracle): the window's partial query was re-parsed and re-written in
PostgreSQL's dialect, which has no ``TRY_CAST``: ``SUM(TRY_CAST(s AS INTEGER))`` became ``SUM(CAST(s AS INT))``,
so a window holding a text that is no integer (``'abc'``) had an error verdict (the cast raised) where a file of
the same records has the sum of the integers (``TRY_CAST`` gives NULL). The query is read and written in the
dialect the contract's SQL is checked in (DuckDB's). The expected values are computed here in plain Python.
"""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl

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
id: urn:test:sql-window-dialect
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - {name: s, logicalType: string}
    quality:
      - {name: parsed_sum, type: sql, query: "SELECT SUM(TRY_CAST(s AS INTEGER)) FROM t", mustBeLessThan: 100}
"""


def _window(c: Contract, slices: list[list[str | None]]) -> tuple[WindowPlan, WindowVerdict]:
    plan = WindowPlan.of(c, c.schema(), StreamSpec(None, 60_000, 0, 3_600_000))
    st = StreamTime(plan, StreamConfig(60_000, 0, 1_000, 10**12, 3_600_000), len(slices))
    sent = []
    for part, xs in enumerate(slices):
        df = pl.DataFrame({"s": pl.Series(xs, dtype=pl.String)})
        out = st.process(
            c.validate(df), compile_plan(c).conform(df), np.full(len(xs), part), np.arange(len(xs)),
            np.full(len(xs), 1_000), now_ms=2_000,
        )  # fmt: skip
        sent += [decode(encode(r)) for r in out.records if isinstance(r, Partial)]
    window = merge_all(p.partial for p in sent)  # type: ignore[union-attr]
    assert window is not None
    return plan, finalize(plan, window)


def test_try_cast_is_kept_in_the_window_partial_query() -> None:
    c = parse_contract(CONTRACT, path="t.yaml")
    slices = [["12", "abc", None], ["7", "-3", ""], ["x1", "40"]]
    expected = sum(int(v) for v in itertools.chain(*slices) if v is not None and v.lstrip("-").isdigit())
    plan, verdict = _window(c, slices)
    assert (
        next(r for r in plan.rules if r.rule.name == "parsed_sum").kind is RuleKind.SQL
    )  # merged, not judged per batch
    got = verdict.check("parsed_sum").result
    assert got.error is None, got.error
    assert got.value == expected == 56
    assert got.passed
    whole = c.validate(pl.DataFrame({"s": pl.Series(list(itertools.chain(*slices)), dtype=pl.String)}))
    assert whole.check("parsed_sum").value == expected
