"""A failing batch's per-row rule lists (``violations``, ``gating_violations``) are kept as the rows' codes and a
names table until read (:mod:`streams.validation.rowlists`): the worker reads the invalid rows' lists only
(``gating_of``), its events none. Read, the fields are the lists a full gather gives."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contracts.loader import load_contract
from streams.validation import engine, report
from streams.validation.rowlists import RuleLists

from .test_failure_path import card_batch

ROOT = Path(__file__).resolve().parents[3]


def _kept(r: report.ValidationReport, field: str) -> RuleLists:
    lists = r.__dict__[f"_{field}"]
    assert isinstance(lists, RuleLists)
    return lists


def test_a_failing_batch_gathers_its_rows_lists_only_when_read() -> None:
    contract = load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml")
    plan = engine.compile_plan(contract)
    df = card_batch()
    r = plan.validate(df)
    invalid = r.valid_mask.not_().arg_true().to_list()
    assert invalid  # rows 0-19 break the contract's row expressions
    reasons = r.gating_of(invalid).to_list()
    some = r.violations_of([19, 3, 40]).to_list()
    for rule in (c.name for c in r.checks if not c.passed):
        r.case_records(rule, 20)
    kept = r.replace(valid_rows=r.valid_rows)
    assert _kept(r, "violations")._series is None and _kept(r, "gating_violations")._series is None
    assert _kept(kept, "violations") is _kept(r, "violations")  # handed over, not gathered

    full = engine.compile_plan(contract).validate(df)  # read as a whole: the same lists
    assert reasons == full.gating().gather(invalid).to_list()
    assert some == full.violations.gather([19, 3, 40]).to_list() and some[2] == []
    assert len(some[0]) == 1 and len(some[1]) == 3  # row 3 breaks both expressions and a column rule
    assert r.violations.equals(full.violations) and r.violations.dtype == pl.List(pl.String)
    assert r.gating().equals(full.gating()) and r.gating_violations is not None
    assert dataclasses.replace(r, rows=r.rows).violations.equals(full.violations)
    assert _kept(r, "violations")._series is not None  # now gathered, and kept
    assert r.violations_of(invalid).to_list() == full.violations.gather(invalid).to_list()


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_some_rows_lists_are_those_of_every_row(data: st.DataObject) -> None:
    rows = data.draw(st.integers(1, 40))
    rules = data.draw(st.integers(1, 11))  # past 8 failing rules the verdicts take the 63-bit words
    masks = [np.array(data.draw(st.lists(st.booleans(), min_size=rows, max_size=rows))) for _ in range(rules)]
    gates = data.draw(st.lists(st.booleans(), min_size=rules, max_size=rules).filter(any))
    failing = [(m, f"rule{i}", g) for i, (m, g) in enumerate(zip(masks, gates, strict=True))]
    picked = data.draw(st.lists(st.integers(0, rows - 1), max_size=rows))
    _, violations, gating = report.lazy_verdicts(rows, failing, {})
    assert isinstance(violations, RuleLists) and isinstance(gating, RuleLists)
    assert violations.of(picked).to_list() == [[f"rule{i}" for i in range(rules) if masks[i][r]] for r in picked]
    assert gating.of(picked).to_list() == [
        [f"rule{i}" for i in range(rules) if masks[i][r] and gates[i]] for r in picked
    ]
    assert gating.of(picked).dtype == pl.List(pl.String)
    assert violations.series().gather(picked).to_list() == violations.of(picked).to_list()  # gathered: the same


def test_a_poll_report_cut_per_partition_keeps_its_lists_unread() -> None:
    from streams.pipeline.split import _report_rows

    contract = load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml")
    df = card_batch()
    r = engine.compile_plan(contract).validate(df)
    full = engine.compile_plan(contract).validate(df)
    for rows in (np.arange(5, 30), np.array([40, 3, 17, 0, 12]), np.arange(0)):
        part = _report_rows(r, rows)
        assert _kept(part, "violations")._series is None
        assert part.violations.to_list() == full.violations.gather(rows).to_list()
        assert part.gating().to_list() == full.gating().gather(rows).to_list()
    assert _kept(r, "violations")._series is None


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_rule_failures_counted_from_the_codes_are_those_of_the_lists(data: st.DataObject) -> None:
    from streams.pipeline.verdicts import row_failures

    rows = data.draw(st.integers(1, 40))
    rules = data.draw(st.integers(1, 10))
    masks = [np.array(data.draw(st.lists(st.booleans(), min_size=rows, max_size=rows))) for _ in range(rules)]
    failing = [(m, f"rule{i}", True) for i, m in enumerate(masks)]
    asked = frozenset(data.draw(st.sets(st.sampled_from([f"rule{i}" for i in range(rules + 1)]))))
    _, violations, _ = report.lazy_verdicts(rows, failing, {})
    assert isinstance(violations, RuleLists)
    counted = row_failures(violations, asked)
    assert violations._series is None  # counted without gathering the lists
    expected = {f"rule{i}": int(m.sum()) for i, m in enumerate(masks) if m.any() and f"rule{i}" in asked}
    assert counted == expected == row_failures(violations.series(), asked)


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_each_rule_s_failing_rows_from_the_codes_are_those_of_the_lists(data: st.DataObject) -> None:

    rows = data.draw(st.integers(1, 40))
    rules = data.draw(st.integers(1, 10))
    masks = [np.array(data.draw(st.lists(st.booleans(), min_size=rows, max_size=rows))) for _ in range(rules)]
    _, violations, _ = report.lazy_verdicts(rows, [(m, f"rule{i}", True) for i, m in enumerate(masks)], {})
    assert isinstance(violations, RuleLists)
    found = violations.rows_by_name()
    assert not violations.gathered
    assert {k: v.tolist() for k, v in found.items()} == {
        f"rule{i}": np.flatnonzero(m).tolist() for i, m in enumerate(masks) if m.any()
    }
    assert all(v.dtype == np.int64 for v in found.values())


def test_the_windows_read_each_rule_s_failing_rows_without_gathering_the_lists() -> None:
    from streams.windows.batch import _failing_rows

    contract = load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml")
    r = engine.compile_plan(contract).validate(card_batch())
    full = engine.compile_plan(contract).validate(card_batch())
    full.violations  # noqa: B018 (gathered: the lists read as before)
    lazy, read = _failing_rows(r), _failing_rows(full)
    assert lazy.keys() == read.keys() and len(lazy) >= 3
    assert all(lazy[k].tolist() == read[k].tolist() for k in lazy) and not _kept(r, "violations").gathered
