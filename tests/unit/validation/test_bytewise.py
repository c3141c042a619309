"""Fixed-width patterns checked byte by byte in numpy (streams.validation.regex.bytewise) against
polars' regex engine, and through the engine on batches large enough to use it.

Hypothesis draws fixed-width patterns from the analyzed subset (literals, escaped meta characters,
ASCII classes, fixed repetitions, ``$``) and strings built from the pattern then mutated (a
character replaced, dropped or added, a trailing newline, non-ASCII characters), arbitrary text,
empty strings and nulls; the byte check must equal ``str.contains(pattern)`` row for row, null for
null, whatever the block the rows fall in.
"""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from streams.contracts.model import Contract, Field, Op, Rule, SchemaObject, check_label
from streams.validation import compile_plan
from streams.validation.regex import bytewise as module
from streams.validation.regex.bytewise import ByteCheck, bytewise
from tests.unit.validation.test_regex_fastpath import CONTRACT_PATTERNS, patterns, samples


def fails(check: ByteCheck, values: list[str | None]) -> list[bool | None]:
    df = pl.DataFrame({"s": values}, schema={"s": pl.String})
    data = df.select(check.expr(pl.col("s"))).to_series()
    return check.fails(df.get_column("s"), data).to_list()


def regex_fails(pattern: str, values: list[str | None]) -> list[bool | None]:
    df = pl.DataFrame({"s": values}, schema={"s": pl.String})
    return df.select(pl.col("s").str.contains(pattern).not_()).to_series().to_list()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_byte_check_equals_the_regex(data: st.DataObject) -> None:
    pattern, spec = data.draw(patterns(fixed=True).filter(lambda p: bytewise(p[0]) is not None), label="pattern")
    check = bytewise(pattern)
    assert check is not None
    values = data.draw(samples(spec))
    values = values * data.draw(st.integers(1, 3))  # repeated: several blocks when blocks are small
    assert fails(check, values) == regex_fails(pattern, values), (pattern, values)


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 17])  # bytes a block: rows straddle blocks or not
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_blocks_of_any_size_give_the_same_rows(
    block: int, data: st.DataObject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "BLOCK_BYTES", block)
    module._tiles.cache_clear()
    try:
        pattern, spec = data.draw(patterns(fixed=True).filter(lambda p: bytewise(p[0]) is not None))
        check = bytewise(pattern)
        assert check is not None
        values = data.draw(samples(spec))
        assert fails(check, values) == regex_fails(pattern, values)
    finally:
        module._tiles.cache_clear()


@pytest.mark.parametrize(
    ("pattern", "used"),
    [
        (CONTRACT_PATTERNS["event_id"], True),
        ("^r-[0-9]{9}$", True),
        ("^dev-[0-9a-f]{6}$", True),
        ("^[A-Z]{2}-[0-9]{6}$", True),
        (CONTRACT_PATTERNS["card_hash"], False),  # one set: the fast path is as cheap
        ("^abc$", False),  # literals: an equality
        ("^[0-9]{4}", False),  # a prefix
        ("^[0-9]{2,3}$", False),  # not one width
        ("^[^@]{4}$", False),  # negated
        ("^[a-b][c-d][e-f][g-h][i-j]x$", True),
        ("^[a-bd-eA-B0-15-6]x$", False),  # five ranges in a set
    ],
)
def test_which_patterns_are_checked_byte_by_byte(pattern: str, used: bool) -> None:
    assert (bytewise(pattern) is not None) is used
    words = ["", "\n", "r-000000001", "r-00000001\n", "dev-00ff0a", "AB-123456", "ac" + "egix", "acegix", None]
    words += ["0123abcd-0123-4567-89ab-0123456789ab", "0123abcd-0123-4567-89ab-0123456789aB", "é" * 18]
    check = bytewise(pattern)
    if check is not None:
        assert fails(check, words) == regex_fails(pattern, words)


def plan_with(pattern: str) -> object:
    fields = (Field("v", "string", pl.String()),)
    dtype = Rule("v:dtype", Op.DTYPE, (), check_label(Op.DTYPE, (), pl.String()), "v")
    rule = Rule("v:pattern", Op.STR_CONTAINS, (pattern,), check_label(Op.STR_CONTAINS, (pattern,)), "v")
    so = SchemaObject(name="s", topic="s.v1", fields=fields, rules=(dtype, rule))
    return compile_plan(Contract(id="urn:t", version="1", status="active", sha256="f" * 64, schemas=(so,)))


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_the_engine_uses_it_on_large_batches_with_the_regex_verdicts(data: st.DataObject) -> None:
    pattern, spec = data.draw(patterns(fixed=True).filter(lambda p: bytewise(p[0]) is not None))
    values = data.draw(samples(spec))
    rows = module.MIN_ROWS + data.draw(st.integers(0, 100))
    column = (values * (rows // len(values) + 1))[:rows]
    batch = pl.DataFrame({"v": column}, schema={"v": pl.String})
    plan = plan_with(pattern)
    report = plan.validate(batch)  # type: ignore[attr-defined]
    prepared = plan._prepare(batch.schema, batch.height)  # type: ignore[attr-defined]
    assert len(prepared.bytewise) == 1
    want = regex_fails(pattern, column)
    event("some rows fail" if any(want) else "every row passes")
    assert report.check("v:pattern").failures == sum(bool(f) for f in want)
    assert report.valid_mask.to_list() == [not f for f in want]
    small = batch.head(100)  # the regex below MIN_ROWS: the same verdicts
    assert plan.validate(small).valid_mask.to_list() == report.valid_mask.head(100).to_list()  # type: ignore[attr-defined]
