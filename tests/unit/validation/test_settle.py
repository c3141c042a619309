"""``str_length`` decided in the pass from byte lengths, the rest by characters (streams.validation.settle).

Hypothesis draws bounds (a minimum of none, 0 or 1, a maximum of none or 0-12) and values made of
ASCII, two-, three- and four-byte characters (so byte and character lengths differ, on both sides
of the maximum), empty strings and nulls; the engine's verdicts must be the character counts'
(pandera's ``str_length``) row for row, and so must the three-state expression once settled.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.contracts.model import Contract, Field, Op, Rule, SchemaObject, check_label
from streams.validation import compile_plan, settle
from streams.validation.predicates import failure_expr
from streams.validation.settle import length_bounds, settle_rows

CHARS = ["a", "Z", " ", "é", "ß", "€", "中", "😀", "\n"]  # 1, 2, 3 and 4 bytes
values = st.lists(st.one_of(st.none(), st.lists(st.sampled_from(CHARS), max_size=14).map("".join)), max_size=30)
bounds = st.tuples(st.sampled_from([None, 0, 1]), st.one_of(st.none(), st.integers(0, 12))).filter(
    lambda b: b != (None, None)
)


def length_rule(lo: int | None, hi: int | None) -> Rule:
    return Rule("v:length", Op.STR_LENGTH, (lo, hi), check_label(Op.STR_LENGTH, (lo, hi)), "v")


def plan_with(rule: Rule) -> Any:
    field = Field("v", "string", pl.String())
    dtype = Rule("v:dtype", Op.DTYPE, (), check_label(Op.DTYPE, (), pl.String()), "v")
    so = SchemaObject(name="s", topic="s.v1", fields=(field,), rules=(dtype, rule))
    return compile_plan(Contract(id="urn:t", version="1", status="active", sha256="f" * 64, schemas=(so,)))


def by_characters(batch: pl.DataFrame, lo: int | None, hi: int | None) -> list[bool]:
    n = pl.col("v").str.len_chars()
    ok = (n >= lo if lo is not None else pl.lit(True)) & (n <= hi if hi is not None else pl.lit(True))
    return batch.select(ok.not_().fill_null(False)).to_series().to_list()


@given(bound=bounds, data=values)
@settings(max_examples=300, deadline=None)
def test_the_byte_lengths_settled_by_characters_give_the_character_verdicts(
    bound: tuple[int | None, int | None], data: list[str | None]
) -> None:
    lo, hi = bound
    rule = length_rule(lo, hi)
    batch = pl.DataFrame({"v": data}, schema={"v": pl.String})
    want = by_characters(batch, lo, hi)
    three = length_bounds(rule, batch.schema)
    assert three is not None
    found = batch.select(three.alias("m")).to_series()
    got = settle_rows(batch, found, "v", failure_expr(rule, pl.col("v"), pl.String())).to_list()
    assert got == want, (bound, data)
    report = plan_with(rule).validate(batch)
    assert report.check("v:length").failures == sum(want)
    assert report.valid_mask.to_list() == [not w for w in want]
    cases = report.failure_cases.filter(pl.col("rule") == "v:length")
    assert cases.get_column("index").to_list() == [i for i, w in enumerate(want) if w]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=values)
def test_a_minimum_above_one_keeps_the_character_count(data: list[str | None]) -> None:
    assert length_bounds(length_rule(2, 2), pl.Schema({"v": pl.String})) is None  # 2 bytes may be 1 character
    assert length_bounds(length_rule(None, 5), pl.Schema({"v": pl.Categorical()})) is None
    batch = pl.DataFrame({"v": data}, schema={"v": pl.String})
    assert plan_with(length_rule(2, 5)).validate(batch).check("v:length").failures == sum(by_characters(batch, 2, 5))


def test_characters_are_counted_only_where_the_bytes_leave_the_length_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pass counts no characters: a batch whose values fit the maximum in bytes (or exceed it
    four times over) is decided there; longer multi-byte values are counted on their rows only."""
    rule = length_rule(1, 4)
    plan = plan_with(rule)
    settled: list[int] = []
    real = settle.settle_rows

    def counting(base: pl.DataFrame, found: pl.Series, *args: Any) -> pl.Series:
        settled.append(base.height)
        return real(base, found, *args)

    monkeypatch.setattr(settle, "settle_rows", counting)
    short = pl.DataFrame({"v": ["abcd", "", None, "x" * 17, "ab"] * 20})
    (k,) = [k for k, s in enumerate(plan.slots) if s.rule.name == "v:length"]
    assert "len_chars" not in str(plan._prepare(short.schema, short.height).counts[k])
    report = plan.validate(short)
    assert settled == [] and report.check("v:length").failures == 40
    mixed = pl.DataFrame({"v": ["ééé", "éééé", "ééééé", "abcde", "中中"]})  # 6, 8, 10, 5, 6 bytes
    report = plan.validate(mixed)
    assert settled == [5] and report.valid_mask.to_list() == [True, True, False, False, True]
