"""Patterns over low-cardinality columns, evaluated once per distinct value (streams.validation.memo).

A plan that keeps the passing values of a pattern rule across batches must give, batch after batch,
the report of a fresh plan (whose first batch runs the regex on every row) and the regex's own
verdict per row: hypothesis draws batches from small alphabets (ASCII and non-ASCII, empty strings,
trailing newlines, nulls) and patterns outside the fast path (alternations, Unicode classes, flags).
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.contracts.model import Contract, Field, Op, Rule, SchemaObject, check_label
from streams.validation import compile_plan, memo
from streams.validation.regex import strategy

VALUES = ["1.2.3", "1.3.0", "2.0.11", "1.2.3\n", "１.2.3", "1.2", "", "ok", "OK", "degraded", "é", "a.b.c", "٣.1.1"]
PATTERNS = [
    (Op.STR_CONTAINS, r"^[0-9]+\.[0-9]+\.[0-9]+$"),
    (Op.STR_CONTAINS, r"\d"),
    (Op.STR_CONTAINS, r"^(ok|degraded)$"),
    (Op.STR_CONTAINS, "(?i)^ok$"),
    (Op.STR_MATCHES, r"[0-9]+\."),  # anchored at the start, like pandera
    (Op.STR_CONTAINS, "é|\\n"),
]


def plan_with(op: Op, pattern: str) -> Any:
    fields = (Field("v", "string", pl.String()), Field("n", "integer", pl.Int64()))
    dtype = Rule("v:dtype", Op.DTYPE, (), check_label(Op.DTYPE, (), pl.String()), "v")
    n_dtype = Rule("n:dtype", Op.DTYPE, (), check_label(Op.DTYPE, (), pl.Int64()), "n")
    rule = Rule("v:pattern", op, (pattern,), check_label(op, (pattern,)), "v")
    so = SchemaObject(name="s", topic="s.v1", fields=fields, rules=(dtype, n_dtype, rule))
    return compile_plan(Contract(id="urn:t", version="1", status="active", sha256="f" * 64, schemas=(so,)))


def regex_fails(batch: pl.DataFrame, op: Op, pattern: str) -> list[bool]:
    anchored = pattern if op is Op.STR_CONTAINS or pattern.startswith("^") else f"^{pattern}"
    return batch.select(pl.col("v").str.contains(anchored).not_().fill_null(False)).to_series().to_list()


def frame(values: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame({"v": values, "n": list(range(len(values)))}, schema={"v": pl.String, "n": pl.Int64})


batches = st.lists(st.lists(st.sampled_from([*VALUES, None]), min_size=0, max_size=40), min_size=1, max_size=6)


@pytest.mark.parametrize(("op", "pattern"), PATTERNS)
@pytest.mark.parametrize("max_values", [64, 2])  # 2: learned values overflow the memo, which gives up
@given(data=batches)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_memoized_pattern_gives_the_regex_verdicts(
    op: Op, pattern: str, max_values: int, data: list[list[str | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert strategy(pattern if pattern.startswith("^") or op is Op.STR_CONTAINS else f"^{pattern}") is None
    monkeypatch.setattr(memo, "MAX_VALUES", max_values)
    plan = plan_with(op, pattern)
    for values in data:
        batch = frame(values)
        got, want = plan.validate(batch), plan_with(op, pattern).validate(batch)
        assert got.checks == want.checks and got.failure_cases.equals(want.failure_cases)
        assert got.valid_mask.equals(want.valid_mask) and got.violations.equals(want.violations)
        fails = regex_fails(batch, op, pattern)
        assert got.check("v:pattern").failures == sum(fails)
        assert got.valid_mask.to_list() == [not f for f in fails]


def test_the_memo_replaces_the_regex_after_the_first_batch_and_learns_new_values() -> None:
    op, pattern = PATTERNS[0]
    plan = plan_with(op, pattern)
    plan.validate(frame(["1.2.3", "1.3.0", None, "x"] * 50))
    (state,) = plan._memos.values()
    assert state.passing == {"1.2.3", "1.3.0"}
    assert "contains" not in str(state.candidates())
    report = plan.validate(frame(["1.2.3", "2.0.11", "x", "1.2.3\n", None] * 20))
    assert report.check("v:pattern").failures == 40  # "x" and "1.2.3\n": the regex, on those rows only
    assert state.passing == {"1.2.3", "1.3.0", "2.0.11"}


def test_a_column_with_many_distinct_values_keeps_the_regex() -> None:
    op, pattern = PATTERNS[0]
    plan = plan_with(op, pattern)
    plan.validate(frame([f"1.2.{i}" for i in range(200)]))
    (state,) = plan._memos.values()
    assert state.decided and state.passing is None and state.candidates() is None
    assert plan.validate(frame(["1.2.3", "x"])).check("v:pattern").failures == 1


def test_values_seen_to_fail_are_known_and_need_no_regex(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value that failed in a batch is known to fail in the next ones: a batch whose values are all
    known is settled in the pass (the regex does not run), with the regex's verdicts."""
    op, pattern = PATTERNS[0]
    plan = plan_with(op, pattern)
    plan.validate(frame(["1.2.3", "x", None] * 30))  # first batch: the regex decides, "x" is seen to fail
    (state,) = plan._memos.values()
    assert state.passing == {"1.2.3"} and state.failing == {"x"}
    plan.validate(frame(["1.2.3", "1.2", "x"] * 10))  # "1.2" not known: checked by the regex, then known
    assert state.failing == {"x", "1.2"}
    calls: list[int] = []
    resolve = memo.PatternMemo.resolve

    def counted(self: memo.PatternMemo, *args: Any) -> pl.Series:
        calls.append(1)
        return resolve(self, *args)

    monkeypatch.setattr(memo.PatternMemo, "resolve", counted)
    batch = frame(["x", "1.2.3", None, "1.2", "1.2.3"] * 40)
    report = plan.validate(batch)
    assert calls == []
    assert report.check("v:pattern").failures == sum(regex_fails(batch, op, pattern)) == 80
    assert report.valid_mask.to_list() == [not f for f in regex_fails(batch, op, pattern)]
    plan.validate(frame(["x", "2.0.11", "é"]))  # new values again: the regex, on their rows only
    assert calls == [1] and state.passing == {"1.2.3", "2.0.11"} and state.failing == {"x", "1.2", "é"}


def test_failing_values_stop_being_learned_past_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memo, "MAX_VALUES", 3)
    op, pattern = PATTERNS[0]
    plan = plan_with(op, pattern)
    plan.validate(frame(["1.2.3", "a"]))
    (state,) = plan._memos.values()
    batch = frame(["1.2.3", "b", "c", "d", "a"])
    report = plan.validate(batch)
    assert state.failing == {"a"}  # {"a", "b", "c", "d"} would pass the bound: none is added
    assert report.check("v:pattern").failures == 4
    assert plan.validate(batch).valid_mask.to_list() == [True, False, False, False, False]
