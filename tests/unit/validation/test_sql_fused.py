"""SQL rules computed in the fused pass (streams.validation.failures.sql_expression).

A SQL rule that polars plans exactly as the ``select`` of its projection (one expression over the
batch, no clause) is computed in the engine's one pass instead of a query planned and run per batch.
Hypothesis draws batches (integers and floats with nulls and NaN, empty batches) and queries of many
shapes (aggregates, arithmetic over them, a bare column, and shapes that must not be fused: WHERE,
GROUP BY, LIMIT, DISTINCT, errors); every check must equal the query run on its own.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.contracts.model import Contract, Field, Op, Rule, SchemaObject, Threshold, check_label
from streams.validation import compile_plan, failures

QUERIES = [
    ("SELECT COUNT(*) FROM readings", True),
    ("SELECT SUM(x) FROM readings", True),
    ("SELECT 100.0 * SUM(CASE WHEN x > 3 THEN 1 ELSE 0 END) / COUNT(*) FROM readings", True),
    ("SELECT AVG(y) FROM batch", True),
    ("SELECT MAX(x) - MIN(x) FROM readings", True),
    ("SELECT COUNT(DISTINCT x) FROM readings", True),
    ("SELECT COUNT(y) FROM readings", True),
    ("SELECT x FROM readings", True),  # no aggregate: the first row's value, either way
    ("SELECT COUNT(*) FROM readings WHERE x > 2", False),
    ("SELECT COUNT(*) FROM (SELECT x FROM readings GROUP BY x)", False),
    ("SELECT COUNT(*) FROM readings LIMIT 0", False),
    ("SELECT DISTINCT x FROM readings", False),
    ("SELECT nope FROM readings", False),
    ("SELECT 'x' FROM readings", False),  # a literal: planned otherwise (and not a number)
]
FIELDS = (Field("x", "integer", pl.Int64()), Field("y", "number", pl.Float64()))


def plan_with(queries: list[str]) -> Any:
    rules = [
        Rule(f"q{i}", Op.SQL, (q,), check_label(Op.SQL, (q,)), threshold=Threshold("mustBeLessThan", 10))
        for i, q in enumerate(queries)
    ]
    so = SchemaObject(name="readings", topic="readings.v1", fields=FIELDS, rules=tuple(rules))
    return compile_plan(Contract(id="urn:t", version="1", status="active", sha256="f" * 64, schemas=(so,)))


def run_alone(query: str, batch: pl.DataFrame) -> tuple[float | None, str | None]:
    rule = Rule("q", Op.SQL, (query,), check_label(Op.SQL, (query,)))
    return failures.batch_metric(rule, batch, "readings")


def same(a: float | None, b: float | None) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


batches = st.integers(0, 12).flatmap(
    lambda n: st.tuples(
        st.lists(st.one_of(st.none(), st.integers(-5, 9)), min_size=n, max_size=n),
        st.lists(st.one_of(st.none(), st.floats(-1e3, 1e3), st.just(float("nan"))), min_size=n, max_size=n),
    )
)


@given(data=batches)
@settings(max_examples=150, deadline=None)
def test_a_fused_query_gives_the_value_of_the_query_run_alone(data: tuple[list[Any], list[Any]]) -> None:
    batch = pl.DataFrame({"x": data[0], "y": data[1]}, schema={"x": pl.Int64, "y": pl.Float64})
    queries = [q for q, _ in QUERIES]
    report = plan_with(queries).validate(batch)
    for i, query in enumerate(queries):
        value, error = run_alone(query, batch)
        check = report.check(f"q{i}")
        assert same(check.value, value) and type(check.value) is type(value) and check.error == error, (query, batch)
        assert check.passed == (error is None and value is not None and value < 10)


def test_only_single_projections_are_fused_and_they_run_no_query(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_with([q for q, _ in QUERIES])
    batch = pl.DataFrame({"x": [1, 2, 5], "y": [0.5, None, 2.0]})
    fused = {plan.slots[k].rule.name for k in plan._prepare(batch.schema, batch.height).sql}
    assert fused == {f"q{i}" for i, (_, expected) in enumerate(QUERIES) if expected}
    ran: list[str] = []
    alone = failures.sql_metric

    def counting(query: str, *args: Any) -> float:
        ran.append(query)
        return alone(query, *args)

    monkeypatch.setattr(failures, "sql_metric", counting)
    plan.validate(batch)
    assert ran == [q for q, expected in QUERIES if not expected]
    ran.clear()
    plan.validate(batch.clear())  # an empty batch: every query alone (an aggregate of no rows is one row)
    assert ran == [q for q, _ in QUERIES]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=batches)
def test_the_fused_report_equals_the_report_without_fusion(
    data: tuple[list[Any], list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = pl.DataFrame({"x": data[0], "y": data[1]}, schema={"x": pl.Int64, "y": pl.Float64})
    queries = [q for q, _ in QUERIES]
    got = plan_with(queries).validate(batch)
    with monkeypatch.context() as m:
        m.setattr(failures, "sql_expression", lambda *args: None)
        want = plan_with(queries).validate(batch)
    assert [c.to_dict() for c in got.checks] == [c.to_dict() for c in want.checks]  # NaN as null
    assert got.failure_cases.equals(want.failure_cases)
    assert got.valid_mask.equals(want.valid_mask) and got.violations.equals(want.violations)
