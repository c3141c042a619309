"""The cheaper reads of the failure path (issue 13) give what the calls they replace gave.

* ``cases.by_rule``: a rendered part's cases split per rule by slicing runs, not ``partition_by``;
* ``BatchRows.failing_all``: every spec's failing rows, from the masks as numpy arrays (null: a pass);
* the constants table of the failure cases, kept per list of rules;
* ``failures.verify_duplicates``: the repeated keys and their distinct count in one call.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from streams.contracts.model import Op, Rule
from streams.validation import cases as lazy
from streams.validation import failures
from streams.validation.report import bool_array

RULES = st.sampled_from(["a", "b", "c", None])


@settings(max_examples=200, deadline=None)
@given(st.lists(RULES, max_size=30))
def test_by_rule_equals_partition_by(names: list[str | None]) -> None:
    cases = pl.DataFrame(
        {"rule": names, "index": list(range(len(names)))}, schema={"rule": pl.String, "index": pl.Int32}
    )
    split = cases.partition_by("rule", as_dict=True, maintain_order=True)
    expected = {str(k[0]): v for k, v in split.items() if k[0] is not None}
    got = lazy.by_rule(cases)
    assert list(got) == list(expected)  # the rules in order of first appearance
    for rule, frame in expected.items():
        assert_frame_equal(got[rule], frame)


def test_by_rule_joins_a_rule_that_comes_back() -> None:
    cases = pl.DataFrame({"rule": ["a", "b", "a", None, "a"], "index": [0, 1, 2, 3, 4]})
    got = lazy.by_rule(cases)
    assert got["a"].get_column("index").to_list() == [0, 2, 4]
    assert got["b"].get_column("index").to_list() == [1]
    assert set(got) == {"a", "b"}


class _Rows(lazy.BatchRows):
    """A BatchRows over masks only (``failing_all`` reads nothing else)."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self._args = (None, frame, frame, {}, [(bool_array(c), k) for k, c in enumerate(frame.get_columns())])


def test_failing_all_equals_failing_with_and_without_nulls() -> None:
    frame = pl.DataFrame(
        {"m0": [True, False, True, False], "m1": [None, True, None, True], "m2": [False] * 4, "m3": [None] * 4},
        schema=dict.fromkeys(["m0", "m1", "m2", "m3"], pl.Boolean),
    )
    rows = _Rows(frame)
    got = rows.failing_all()
    assert [a.tolist() for a in got] == [[0, 2], [1, 3], [], []]
    assert [a.tolist() for a in got] == [rows.failing(j).tolist() for j in range(4)]
    assert [a.tolist() for a in rows.failing_all(1)] == [[0], [1], [], []]


def test_the_constants_table_is_kept_per_list_of_rules() -> None:
    rules = [("Column", "x", "c0", 0, "r0"), ("Column", None, "c1", 1, "r1")]
    lazy._TABLES.clear()
    table = lazy.constants_table(rules)
    assert len(lazy._TABLES) == 1  # kept for the next batch failing the same rules
    assert lazy.constants_table(list(rules)) is table
    assert table.schema == lazy._CONSTANTS and table.rows() == rules


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(0, 6)), min_size=1, max_size=40), st.sampled_from([0, 1, 2]))
def test_verify_duplicates_counts(values: list[int | None], hashed: int) -> None:
    """Without hashes (the keys compared in polars), with the keys' hashes (compared with their neighbours of the
    same hash), and with colliding hashes (every key's hash the same: the keys compared in polars)."""
    frame = pl.DataFrame({"k": [None if v is None else f"id{v}" for v in values]}, schema={"k": pl.String})
    candidates = frame.get_column("k").is_not_null()  # every keyed row a candidate
    rule = Rule("k_unique", Op.UNIQUE, (), "unique", column="k")
    hashes = [None, frame.get_column("k").hash(), pl.Series([7] * len(values), dtype=pl.UInt64)][hashed]
    if hashed == 1:  # candidates: the rows whose hash repeats (repeated_hashes)
        candidates = failures.repeated_hashes(hashes.set(candidates.not_(), None))
        if candidates is None:
            candidates = pl.Series([False] * len(values))
    mask, measured = failures.verify_duplicates(frame, candidates, rule, hashes)
    keys = pl.Series([v for v in values if v is not None], dtype=pl.Int64)
    repeated = {v for v in keys.to_list() if keys.to_list().count(v) > 1}
    assert mask.to_list() == [v is not None and v in repeated for v in values]
    assert measured == sum(1 for v in keys.to_list() if v in repeated) - len(repeated)
    assert mask.dtype == pl.Boolean and np.asarray(mask).shape == (len(values),)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([True, False, None]), max_size=3000),
    st.one_of(st.none(), st.integers(0, 40)),
    st.integers(0, 2500),
)
def test_true_rows_are_the_head_of_arg_true(values: list[bool | None], limit: int | None, pad: int) -> None:
    """Windows of the mask (1,024 rows and doubling) give the rows arg_true gives, cut to ``limit``."""
    mask = pl.Series("m", [False] * pad + values, dtype=pl.Boolean)  # failing rows past the first window too
    expected = mask.arg_true().to_numpy()
    got = lazy._true_rows(bool_array(mask), limit)
    assert got.tolist() == (expected if limit is None else expected[:limit]).tolist()


def test_true_rows_past_several_windows() -> None:
    mask = np.arange(20_000) % 5_000 == 4_999  # 4 rows, the first in the third window
    assert lazy._true_rows(mask, 3).tolist() == [4_999, 9_999, 14_999]
    assert lazy._true_rows(mask, 10).tolist() == [4_999, 9_999, 14_999, 19_999]


def test_first_cases_past_the_first_windows_equal_the_eager_frame() -> None:
    """A batch of 6,000 rows whose failures sit past the first window of the mask (1,280 rows for 20 cases), one
    rule failing only near the end: the worker's read (``cases_of``) equals the whole frame filtered."""
    from streams.contracts.loader import load_contract
    from streams.validation import compile_plan
    from tests.unit.validation.test_failure_path import ROOT, card_batch

    plan = compile_plan(load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml"))
    i = pl.int_range(pl.len())
    df = card_batch(6_000).with_columns(  # card_batch breaks rows 0-19; move them: the mask's head holds none
        pl.when(i < 20).then(pl.col("amount_eur").shift(-5_000)).otherwise(pl.col("amount_eur")).alias("amount_eur"),
        pl.when((i % 1_500 == 1_499) | (i > 5_990))
        .then(pl.lit("ZZ"))
        .otherwise(pl.col("merchant_country"))
        .alias("merchant_country"),
    )
    report = plan.validate(df)
    eager = plan.validate(df).failure_cases
    failed = [c.name for c in report.checks if not c.passed]
    assert any("merchant_country" in n for n in failed)  # the rule failing past the first windows
    for name in failed:
        expected = eager.filter(pl.col("rule") == name).head(20)
        assert_frame_equal(report.cases_of(name, 20), expected)
    assert report.cases_of(failed[0], 3).height <= 3


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 30), max_size=200), st.sets(st.integers(0, 30), min_size=1, max_size=12))
def test_members_equals_isin(values: list[int], among: set[int]) -> None:
    """Membership in the repeated hashes: compared one by one for a few, by binary search past them."""
    v, a = np.array(values, dtype=np.uint64), np.array(sorted(among), dtype=np.uint64)
    assert failures._members(v, a).tolist() == np.isin(v, a).tolist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([True, False, None]), max_size=300), st.integers(0, 20), st.integers(0, 2))
def test_bool_array_equals_fill_null_to_numpy(values: list[bool | None], offset: int, chunks: int) -> None:
    """A mask's Arrow bits unpacked (past an offset: a slice; over several chunks), null as False (whatever the
    value bit under a null: here set, as an expression's kernel may leave it)."""
    n = len(values)
    bits = pa.py_buffer(np.packbits(np.array([v is not False for v in values], dtype=bool), bitorder="little"))
    valid = pa.py_buffer(np.packbits(np.array([v is not None for v in values], dtype=bool), bitorder="little"))
    mask = pl.Series("m", pa.BooleanArray.from_buffers(pa.bool_(), n, [valid, bits], values.count(None)))
    for _ in range(chunks):
        mask = pl.concat([mask, mask], rechunk=False)
    mask = mask.slice(min(offset, mask.len()))
    got = bool_array(mask)
    assert got.dtype == np.bool_ and got.tolist() == mask.fill_null(False).to_list()
    assert bool_array(pl.Series("n", [None] * 3)).tolist() == [False] * 3
