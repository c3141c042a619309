"""SQL rules on a window: decomposed queries equal the query on the whole frame, however it is split."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.validation.failures import sql_metric
from streams.windows.sql import AggregatePlan, merge_values, plan_sql, query_columns

MERGEABLE = [
    "SELECT COUNT(*) FROM t",
    "SELECT COUNT(x) FROM t WHERE d > 5",
    "SELECT 100.0 * SUM(CASE WHEN d > 60 THEN 1 ELSE 0 END) / COUNT(*) FROM t",
    "SELECT AVG(x) FROM t WHERE d > 5",
    "SELECT MAX(d) - MIN(d) FROM t",
    "SELECT COALESCE(SUM(x), 0) FROM t WHERE x > 100",
]
NOT_MERGEABLE = {
    "SELECT COUNT(DISTINCT x) FROM t": "DISTINCT",
    "SELECT x FROM t GROUP BY x": "GROUP",
    "SELECT MEDIAN(d) FROM t": "MEDIAN",
    "SELECT COUNT(*) FROM (SELECT * FROM t)": "one table",
    "SELECT x + 1 FROM t": "no aggregate",
    "SELECT COUNT(*) FROM t ORDER BY 1 LIMIT 1": "ORDER",
}


@pytest.mark.parametrize(("query", "why"), NOT_MERGEABLE.items())
def test_queries_that_cannot_be_merged_say_why(query: str, why: str) -> None:
    reason = plan_sql(query)
    assert isinstance(reason, str) and why in reason


rows = st.lists(
    st.tuples(st.one_of(st.none(), st.integers(-50, 200)), st.one_of(st.none(), st.floats(0, 100, allow_nan=False))),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(rows, st.lists(st.integers(1, 10), min_size=1, max_size=5))
def test_partials_merge_to_the_whole_frame(data: list[tuple], cuts: list[int]) -> None:
    frame = pl.DataFrame(
        {"x": [r[0] for r in data], "d": [r[1] for r in data]}, schema={"x": pl.Int64, "d": pl.Float64}
    )
    for query in MERGEABLE:
        plan = plan_sql(query)
        assert isinstance(plan, AggregatePlan), query
        state, i, k = None, 0, 0
        while i < frame.height:
            part = plan.partial(frame.slice(i, cuts[k % len(cuts)]), "t")
            state = part if state is None else merge_values(plan.kinds, state, part)
            i, k = i + cuts[k % len(cuts)], k + 1
        assert state is not None
        try:
            expected: float | None = sql_metric(query, frame.lazy(), "t")
        except ValueError:
            expected = None  # NULL on the whole frame
        if expected is None:
            with pytest.raises(ValueError, match="not a number"):
                plan.final(state)
        else:
            assert plan.final(state) == pytest.approx(expected, rel=1e-9, abs=1e-9), query


def test_columns_read_by_a_query() -> None:
    assert query_columns("SELECT COUNT(*) FROM t WHERE x > 1") == {"x"}
    assert query_columns("SELECT * FROM t") is None
    assert query_columns("SELECT COUNT(DISTINCT country) FROM t") == {"country"}


@settings(max_examples=60, deadline=None)
@given(rows, st.lists(st.integers(-1, 3), min_size=30, max_size=30))
def test_grouped_partials_equal_each_slice_alone(data: list[tuple], labels: list[int]) -> None:
    """One grouped run over a batch gives every slice exactly what the partial query gives on the slice alone
    (a slice the WHERE filters out entirely included; rows of slice -1 belong to none)."""
    frame = pl.DataFrame(
        {"x": [r[0] for r in data], "d": [r[1] for r in data]}, schema={"x": pl.Int64, "d": pl.Float64}
    )
    groups = np.array(labels[: frame.height], dtype=np.int64)
    for query in MERGEABLE:
        plan = plan_sql(query)
        assert isinstance(plan, AggregatePlan), query
        got = plan.partials(frame, "t", groups)
        expected = {int(g): plan.partial(frame.filter(pl.Series(groups == g)), "t") for g in set(groups) if g >= 0}
        assert got.keys() == expected.keys(), query
        for g, values in expected.items():
            assert [v is None for v in got[g]] == [v is None for v in values], (query, g)
            present = [(a, b) for a, b in zip(got[g], values, strict=True) if b is not None]
            assert [a for a, _ in present] == pytest.approx([b for _, b in present], rel=1e-12), (query, g)
