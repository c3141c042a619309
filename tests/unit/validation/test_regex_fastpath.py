"""The regex fast path (:mod:`streams.validation.regex`) against polars' regex engine.

Hypothesis draws patterns from the analyzed subset (literals, escaped meta characters,
``.``, ASCII classes, negated classes, every quantifier, with or without ``$``) and strings
built from the pattern then mutated (a character replaced, dropped or added, a trailing
newline, non-ASCII characters), plus arbitrary text, empty strings and nulls; the fast
expression must equal ``str.contains(pattern)`` on every row, null for null.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from streams.contracts.loader import load_contract
from streams.contracts.model import Op
from streams.validation.engine import compile_plan
from streams.validation.predicates import builtin
from streams.validation.regex import fast_contains, parse, strategy
from streams.validation.regex.strategies import MAX_OTHERS

ASCII = [chr(i) for i in range(0x20, 0x7F)] + ["\n", "\t", "\r"]
EXTRA = ["é", "€", "日", "😀", "\u00a0", "\x00", "\x7f", "١"]
CLASS_ESCAPE = set("\\]^-[&~")
META = set("\\.+*?()|[]{}^$")
CONTRACT_PATTERNS = {
    "event_id": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    "card_hash": "^[0-9a-f]{64}$",
    "merchant_category_code": "^[0-9]{4}$",
}


def class_char(ch: str) -> str:
    if ch in {"\n": 0, "\t": 0, "\r": 0}:
        return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}[ch]
    return "\\" + ch if ch in CLASS_ESCAPE else ch


@st.composite
def char_sets(draw: Any) -> tuple[str, frozenset[str]]:
    """A class body and the characters it stands for."""
    parts: list[str] = []
    chars: set[str] = set()
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            lo, hi = sorted(draw(st.sampled_from(["09", "af", "AZ", "az", "AF", " /", ":@", "!~", "  "])))
            parts.append(f"{class_char(lo)}-{class_char(hi)}")
            chars.update(chr(i) for i in range(ord(lo), ord(hi) + 1))
        else:
            ch = draw(st.sampled_from(ASCII))
            parts.append(class_char(ch))
            chars.add(ch)
    return "".join(parts), frozenset(chars)


@st.composite
def atoms(draw: Any, fixed: bool = False) -> tuple[str, frozenset[str], bool, int, int | None]:
    """``(text, chars, negated, low, high)``."""
    kind = draw(st.sampled_from(["literal", "class", "class"] if fixed else ["literal", "class", "negated", "dot"]))
    if kind == "literal":
        ch = draw(st.sampled_from(ASCII))
        text = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch) or ("\\" + ch if ch in META else ch)
        if ch in "#&-~" and draw(st.booleans()):
            text = "\\" + ch
        chars, negated = frozenset(ch), False
    elif kind == "dot":
        text, chars, negated = ".", frozenset("\n"), True
    else:
        body, chars = draw(char_sets())
        negated = kind == "negated"
        text = f"[{'^' if negated else ''}{body}]"
    low = draw(st.integers(0, 5))
    quantifiers = [("", 1, 1), (f"{{{low}}}", low, low)]
    if not fixed:
        high = low + draw(st.integers(0, 4))
        quantifiers += [("*", 0, None), ("+", 1, None), ("?", 0, 1), (f"{{{low},}}", low, None)]
        quantifiers += [(f"{{{low},{high}}}", low, high)]
    quant, lo, hi = draw(st.sampled_from(quantifiers))
    return text + quant, chars, negated, lo, hi


@st.composite
def patterns(draw: Any, fixed: bool = False) -> tuple[str, list[tuple[frozenset[str], bool, int, int | None]]]:
    if not fixed and draw(st.integers(0, 3)) == 0:  # one (negated) atom: the other shape with a fast path
        parts = [draw(atoms())]
    else:
        parts = draw(st.lists(atoms(fixed=fixed), min_size=0, max_size=6))
    end = draw(st.booleans()) or fixed
    text = "^" + "".join(p[0] for p in parts) + ("$" if end else "")
    return text, [p[1:] for p in parts]


@st.composite
def samples(draw: Any, spec: list[tuple[frozenset[str], bool, int, int | None]]) -> list[str | None]:
    pool = ASCII + EXTRA
    out: list[str | None] = [None, "", "\n"]
    for _ in range(draw(st.integers(1, 6))):
        text = ""
        for chars, negated, low, high in spec:
            count = draw(st.integers(low, low + 3 if high is None else high))
            allowed = sorted(chars) if not negated else [c for c in pool if c not in chars]
            text += "".join(draw(st.sampled_from(allowed)) for _ in range(count)) if allowed else ""
        mutation = draw(st.sampled_from(["none", "none", "replace", "drop", "insert", "newline", "prefix"]))
        at = draw(st.integers(0, len(text)))
        ch = draw(st.sampled_from(pool))
        if mutation == "replace" and text:
            at = min(at, len(text) - 1)
            text = text[:at] + ch + text[at + 1 :]
        elif mutation == "drop" and text:
            text = text[:at] + text[at + 1 :]
        elif mutation == "insert":
            text = text[:at] + ch + text[at:]
        elif mutation == "newline":
            text += "\n"
        elif mutation == "prefix":
            text = ch + text
        out.append(text)
    out += draw(st.lists(st.text(st.sampled_from(pool), max_size=12), max_size=4))
    return out


def assert_same(pattern: str, values: list[str | None]) -> None:
    fast = fast_contains(pl.col("s"), pattern)
    assert fast is not None
    df = pl.DataFrame({"s": values}, schema={"s": pl.String})
    got = df.select(fast.alias("fast"), pl.col("s").str.contains(pattern).alias("regex"))
    assert got["fast"].dtype == pl.Boolean
    assert got["fast"].to_list() == got["regex"].to_list(), (pattern, values)


def assert_engine_same(pattern: str, values: list[str | None]) -> None:
    """The expression the engine uses (fast path or regex) equals the regex."""
    expr = builtin(Op.STR_CONTAINS, (pattern,), pl.col("s"), pl.String())
    df = pl.DataFrame({"s": values}, schema={"s": pl.String})
    got = df.select(expr.alias("engine"), pl.col("s").str.contains(pattern).alias("regex"))
    assert got["engine"].to_list() == got["regex"].to_list(), (pattern, values)


def fast_path_expected(spec: list[tuple[frozenset[str], bool, int, int | None]]) -> bool:
    """Whether a fixed-width pattern must take the fast path, from the rules in the module docstring:
    only literals, or a most common set that every other position (at most ``MAX_OTHERS``) is a
    subset of or disjoint from."""
    positions = [chars for chars, _, low, _ in spec for _ in range(low)]
    if all(len(s) == 1 for s in positions):
        return True
    return any(
        sum(s != common for s in positions) <= MAX_OTHERS and all(s <= common or not s & common for s in positions)
        for common in set(positions)
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fast_path_equals_the_regex(data: st.DataObject) -> None:
    # only patterns with a fast path: hypothesis fails (filter_too_much) if they become rare
    pattern, spec = data.draw(patterns().filter(lambda p: strategy(p[0]) is not None), label="pattern")
    assert_same(pattern, data.draw(samples(spec)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_subset_parses_and_the_engine_agrees_with_the_regex_on_either_path(data: st.DataObject) -> None:
    pattern, spec = data.draw(patterns())
    assert parse(pattern) is not None  # the parser accepts the whole analyzed subset
    event("fast path" if strategy(pattern) is not None else "regex")
    assert_engine_same(pattern, data.draw(samples(spec)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fixed_width_patterns_take_the_fast_path(data: st.DataObject) -> None:
    pattern, spec = data.draw(patterns(fixed=True))
    expected = fast_path_expected(spec)
    event("fast path" if expected else "regex (a set partly overlaps the most common one, or too many others)")
    assert (strategy(pattern) is not None) is expected, pattern
    values = data.draw(samples(spec))
    if expected:
        assert_same(pattern, values)
    assert_engine_same(pattern, values)


@pytest.mark.parametrize(
    "pattern",
    [
        "^$",
        "^",
        "^abc$",
        "^ab",
        "^[0-9]{4}",
        "^[0-9]{4}$",
        "^[0-9]{2,}",
        "^a-b\\.c$",
        "^[A-Z]{2}[0-9]{6}$",
        "^[a-z][a-z0-9]{7}$",
        "^[a-f][0-9a-f]-x$",
        "^.*$",
        "^.+$",
        "^[^@ ]{1,3}$",
        "^[^,]*$",
        "^x?y{0}$",
        "^[a-z]{2,3}$",
        "^-?[0-9]{3}$",
        "^[a-f][a-z]{3}0$",
        "^[A-Z]{2}[0-9]{1,2}",
        *CONTRACT_PATTERNS.values(),
    ],
)
def test_examples_take_the_fast_path(pattern: str) -> None:
    assert strategy(pattern) is not None
    words = ["", "\n", "abc", "abcd", "1234", "1234\n", "12345", "a-b.c", "AB123456", "ab12cdef", "a1-x", "éé", None]
    words += ["a@b", "x y", "a,b", "y", "0123abcd-0123-4567-89ab-0123456789ab", "f" * 64, "F" * 64, "é" * 32]
    assert_same(pattern, words)


@pytest.mark.parametrize(
    "pattern",
    [
        "abc",  # unanchored
        "^(ab)$",
        "^a|b$",
        "^\\d{4}$",  # Unicode digits in Rust
        "^\\w+$",
        "^[\\s]$",
        "^(?i)abc$",
        "^é$",
        "^[a-z]+[0-9]$",  # variable width followed by more
        "^[a-z]{2,9}$",  # more than 4 combinations of repetition counts
        "^a?b?c?$",
        "^a{,3}$",
        "^a+?$",
        "^a$b",
        "^[[:alpha:]]$",
        "^[a-z&&[^x]]$",
        "^[a--]$",
        "^[z-a]$",
        "^[a-f][d-z]{3}$",  # a set partly overlapping the most common one
        "^\\x41$",
        "^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$",
    ],
)
def test_everything_else_falls_back_to_the_regex(pattern: str) -> None:
    assert strategy(pattern) is None


def test_the_example_contract_patterns_use_the_fast_path() -> None:
    contract = load_contract("contracts/card_transactions.odcs.yaml")
    plan = compile_plan(contract)
    found = {}
    for slot in plan.slots:
        rule = slot.rule
        if rule.op is Op.STR_CONTAINS and rule.column in CONTRACT_PATTERNS:
            assert rule.args[0] == CONTRACT_PATTERNS[str(rule.column)]
            found[rule.column] = str(builtin(rule.op, rule.args, pl.col(str(rule.column)), pl.String()))
    assert found.keys() == CONTRACT_PATTERNS.keys()
    for column, expr in found.items():
        assert "contains" not in expr and "reinterpret" in expr, (column, expr)
    # the compiled plan uses them on large batches; on small ones the regex is cheaper
    schema = contract.schema().polars_schema
    for rows, fast in ((100_000, True), (20_000, True), (1_000, False)):
        fails = plan._prepare(schema, rows).fails
        for k, slot in enumerate(plan.slots):
            if slot.rule.op is Op.STR_CONTAINS and slot.rule.column in CONTRACT_PATTERNS:
                assert ("reinterpret" in str(fails[k])) is fast and ("contains" in str(fails[k])) is not fast
    # on a column of another dtype, or an unknown one, the regex runs (and fails the same way)
    assert "contains" in str(builtin(Op.STR_CONTAINS, ("^[0-9]{4}$",), pl.col("x"), None))
    assert "contains" in str(builtin(Op.STR_CONTAINS, ("^[0-9]{4}$",), pl.col("x"), pl.Categorical()))


def test_str_matches_is_anchored_at_the_start_like_pandera() -> None:
    df = pl.DataFrame({"s": ["1234", "12345", "x1234", "123", None]})
    fast = builtin(Op.STR_MATCHES, ("[0-9]{4}",), pl.col("s"), pl.String())
    assert "contains" not in str(fast)
    assert df.select(fast).to_series().to_list() == [True, True, False, False, None]
    assert df.select(fast).to_series().equals(df.select(pl.col("s").str.contains("^[0-9]{4}")).to_series())


def test_empty_frames_and_all_null_columns() -> None:
    for pattern in CONTRACT_PATTERNS.values():
        expr = fast_contains(pl.col("s"), pattern)
        assert expr is not None
        assert pl.DataFrame(schema={"s": pl.String}).select(expr).height == 0
        assert pl.DataFrame({"s": [None, None]}, schema={"s": pl.String}).select(expr).to_series().to_list() == [
            None,
            None,
        ]


def test_large_batches_are_checked_slice_by_slice() -> None:
    from streams.testing import generate_feature_frame

    df = generate_feature_frame(150_000, seed=3).select(*CONTRACT_PATTERNS)
    n = df.height
    broken = pl.int_range(n) % 997 == 0
    df = df.with_columns(  # some values cut, some nulls, some with a trailing newline
        pl.when(broken).then(pl.col(c).str.slice(1)).otherwise(pl.col(c)) for c in CONTRACT_PATTERNS
    ).with_columns(
        pl.when(pl.int_range(n) % 1009 == 0).then(None).otherwise(pl.col("event_id")).alias("event_id"),
        pl.when(pl.int_range(n) % 1013 == 0).then(pl.col("card_hash") + "\n").otherwise(pl.col("card_hash")),
    )
    for column, pattern in CONTRACT_PATTERNS.items():
        expr = fast_contains(pl.col(column), pattern, rows=1 << 17)
        assert expr is not None and "slice" in str(expr)
        got = df.select(expr.alias("fast"), pl.col(column).str.contains(pattern).alias("regex"))
        assert got.height == n and got["fast"].to_list() == got["regex"].to_list()
        assert 0 < got["fast"].not_().sum() < n


@pytest.mark.parametrize(
    ("pattern", "fast"),
    [
        ("^dev-[0-9a-f]{6}$", False),  # 4 of 10 positions outside [0-9a-f]: the regex is cheaper
        ("^[A-Z]{2}-[0-9]{6}$", False),
        ("^r-[0-9]{9}$", True),
        ("^[0-9]{3}-[0-9]{2}-[0-9]{4}$", True),
        (CONTRACT_PATTERNS["event_id"], True),
    ],
)
def test_the_byte_arrays_are_used_where_they_are_cheaper_than_the_regex(pattern: str, fast: bool) -> None:
    assert strategy(pattern) is not None  # exact either way: only the cost differs
    assert (fast_contains(pl.col("s"), pattern, rows=1 << 17) is not None) is fast
    assert fast_contains(pl.col("s"), pattern) is not None  # batch height unknown
