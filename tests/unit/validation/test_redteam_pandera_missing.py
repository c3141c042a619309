"""``Contract.to_pandera()`` builds a schema for every contract the engine runs: ``missingValues`` lists mixing
types too (``[-1, null, 'N/A']`` on an integer property, which docs/semantics.md says the engine reads as
``-1`` and nulls).

Found by the red-team pass: building the pandera check asked for its predicate without the column's type, and
polars refused to build one list of ``-1`` and ``'N/A'``: ``to_pandera()`` raised ``ContractError`` on a contract
``validate`` ran. The independent computation is a plain loop over the values.
"""

from __future__ import annotations

import polars as pl
import pytest

from streams.contracts.loader import parse_contract

CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: urn:test:missing
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - name: m
        logicalType: integer
        quality: [{type: library, metric: missingValues, arguments: {missingValues: [-1, null, "N/A"]}, mustBe: 0}]
      - name: s
        logicalType: string
"""


def test_to_pandera_builds_and_agrees_with_the_engine() -> None:
    c = parse_contract(CONTRACT, path="t.yaml")
    values = [-1, 0, None, 5, -1, 7]
    df = pl.DataFrame({"m": pl.Series(values, dtype=pl.Int64), "s": ["a"] * len(values)})
    expected = [i for i, v in enumerate(values) if v is None or v == -1]
    engine = c.validate(df)
    assert sorted(int(i) for i in engine.failure_cases["index"].to_list()) == expected == [0, 2, 4]
    with pytest.raises(Exception) as info:
        c.to_pandera().validate(df, lazy=True)
    assert sorted(info.value.failure_cases["index"].to_list()) == expected  # type: ignore[attr-defined]


def test_pandera_checks_keep_the_predicates_ignore_na() -> None:
    """The pandera check's ``ignore_na`` (now known from the rule) is the engine predicate's, rule by rule."""
    from pathlib import Path

    from streams.contracts.loader import load_contract
    from streams.contracts.model import Op
    from streams.validation.pandera.checks import column_check
    from streams.validation.predicates import predicate

    root = Path(__file__).resolve().parents[3] / "contracts"
    seen = set()
    for path in sorted(root.glob("*.yaml")):
        c = load_contract(path)
        for so in c.schemas:
            for rule in so.rules:
                if rule.column is None or rule.is_batch_metric or rule.op in (Op.DTYPE, Op.SQL, Op.ROW_COUNT):
                    continue
                check = column_check(rule)
                assert check.ignore_na == predicate(rule, pl.col(rule.column))[1], rule.name
                seen.add(rule.op)
    assert {Op.NOT_NULL, Op.ISIN, Op.STR_CONTAINS} <= seen
