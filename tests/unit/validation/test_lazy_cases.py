"""Failure cases rendered when read equal those rendered up front.

A report describes its failure cases (:class:`streams.validation.cases.FailureCases`) and renders them
on the first read of ``failure_cases``; ``cases_of(rule, n)`` renders only the first ``n`` cases of one
rule, and the worker's per-partition split (``split._report_rows``) and mismatch merge
(``verdicts.merge_mismatches``) cut the description without rendering it. The reference for each is
the eager computation of the code before the change: the whole frame rendered first, then filtered
(``_split`` and ``_drop`` below are the previous code of the split and the merge, on rendered frames).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import replace
from unittest import mock

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from streams.contracts.loader import load_contract
from streams.contracts.model import Contract, Op, SchemaObject
from streams.pipeline import split
from streams.pipeline.verdicts import merge_mismatches
from streams.validation import cases as lazy
from streams.validation import compile_plan, failures
from streams.validation.report import FAILURE_CASE_SCHEMA, ValidationReport
from tests.unit.validation.test_differential import cases as batches
from tests.unit.validation.test_failure_path import ROOT, card_batch

SIZES = (0, 1, 3, 1000)


def _split(cases: pl.DataFrame, rows: np.ndarray) -> pl.DataFrame:
    """The failure cases of a partition as ``split._report_rows`` cut them before (on the rendered frame)."""
    at = cases.get_column("index")
    renumber = pl.Series(np.arange(len(rows), dtype=np.int32))
    hit = at.is_in(pl.Series(rows.astype(np.int32)).implode()).fill_null(False)
    mine = cases.filter(hit).with_columns(
        pl.col("index").replace_strict(pl.Series(rows.astype(np.int32)), renumber, return_dtype=pl.Int32)
    )
    return pl.concat([cases.filter(at.is_null()), mine], how="vertical")


def _drop(cases: pl.DataFrame, drops: dict[str, np.ndarray], added: pl.DataFrame) -> pl.DataFrame:
    """The failure cases after ``merge_mismatches`` as it built them before (on the rendered frame)."""
    drop = pl.lit(False)
    for name, rows in drops.items():
        drop = drop | ((pl.col("rule") == name) & pl.col("index").cast(pl.UInt32).is_in(pl.Series(rows).implode()))
    kept = cases.filter(~drop) if drops else cases
    return pl.concat([kept, added], how="vertical_relaxed")


def _fresh(report: ValidationReport) -> ValidationReport:
    """A copy of ``report`` whose cases are not rendered yet: its description without what was rendered
    (``replace`` shares the description, and with it what a read rendered)."""
    parts = tuple(
        p if isinstance(p, pl.DataFrame) else lazy._Rows(lazy.BatchRows(*p.source._args), p.keep, p.drops)
        for p in report.cases._parts
    )
    return replace(report, failure_cases=lazy.FailureCases(parts))


def _check_reads(report: ValidationReport, eager: pl.DataFrame) -> None:
    """Every way of reading ``report``'s cases, each on a copy not rendered yet, equals ``eager``."""
    rules = sorted(set(eager.get_column("rule").drop_nulls().to_list()) | {"no such rule"})
    for rule in rules:
        for n in SIZES:
            want = eager.filter(pl.col("rule") == rule).head(n)
            assert_frame_equal(_fresh(report).cases_of(rule, n), want)
            assert _fresh(report).case_records(rule, n) == want.to_dicts()  # (the worker's events read these)
    assert_frame_equal(_fresh(report).failure_cases, eager)
    read = _fresh(report)  # samples first, then the whole frame, then samples read from it
    for rule in rules:
        read.cases_of(rule, 2)
    assert_frame_equal(read.failure_cases, eager)
    for rule in rules:
        assert_frame_equal(read.cases_of(rule, 3), eager.filter(pl.col("rule") == rule).head(3))
        assert read.case_records(rule, 3) == eager.filter(pl.col("rule") == rule).head(3).to_dicts()


@st.composite
def partitions(draw: st.DrawFn, rows: int) -> list[np.ndarray]:
    """The rows of each partition of a poll: runs in order, or (Arrow messages) any sorted subsets."""
    if draw(st.booleans()):
        cuts = sorted(draw(st.lists(st.integers(0, rows), max_size=3)))
        bounds = [0, *cuts, rows]
        return [np.arange(a, b) for a, b in itertools.pairwise(bounds) if b > a]
    owner = np.array(draw(st.lists(st.integers(0, 2), min_size=rows, max_size=rows)), dtype=np.int64)
    return [np.flatnonzero(owner == k) for k in range(3) if (owner == k).any()]


@st.composite
def mismatches(draw: st.DrawFn, schema_obj: SchemaObject, rows: int) -> pl.DataFrame:
    """Wrong-typed values found by the decoder (``Decoded.mismatches``) in some rows of some columns."""
    columns = [f.name for f in schema_obj.fields]
    found = draw(st.lists(st.tuples(st.integers(0, max(rows - 1, 0)), st.sampled_from(columns)), max_size=6))
    found = list(dict.fromkeys(found)) if rows else []
    return pl.DataFrame(
        {"row": [r for r, _ in found], "column": [c for _, c in found], "value": [f"v{r}" for r, _ in found]},
        schema={"row": pl.UInt32, "column": pl.String, "value": pl.String},
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_cases_rendered_when_read_equal_the_eager_ones(data: st.DataObject) -> None:
    schema_obj, df = data.draw(batches())
    for name, dtype in df.schema.items():  # integers arriving as floats, some not integral: dtype failures
        if dtype == pl.Int64 and df.height and data.draw(st.booleans()):
            half = data.draw(st.lists(st.booleans(), min_size=df.height, max_size=df.height))
            value = pl.col(name).cast(pl.Float64) + pl.Series(half).cast(pl.Float64) / 2
            df = df.with_columns(pl.when(pl.col(name).abs() < 2**40).then(value).otherwise(None).alias(name))
    contract = Contract("urn:lazy", "1", "active", "0" * 64, (schema_obj,))
    plan = compile_plan(contract)
    report = plan.validate(df)
    eager = plan.validate(df).failure_cases  # rendered up front, as before
    assert eager.schema == FAILURE_CASE_SCHEMA
    _check_reads(report, eager)

    parts = data.draw(partitions(df.height))
    for rows in parts:  # the worker's per-partition split, then the reads of a partition
        _check_reads(split._report_rows(_fresh(report), rows), _split(eager, rows))

    found = data.draw(mismatches(schema_obj, df.height))
    merged = merge_mismatches(_fresh(report), schema_obj, found)
    nulls = {r.name: r.column for r in schema_obj.rules if r.op in (Op.NOT_NULL, Op.MISSING)}
    columns = set(found.get_column("column").to_list())
    drops = {
        name: found.filter(pl.col("column") == column).get_column("row").unique().to_numpy()
        for name, column in nulls.items()
        if column in columns
    }
    added = merge_mismatches(replace(report, failure_cases=eager.clear()), schema_obj, found).failure_cases
    want = _drop(eager, drops, added) if found.height else eager
    _check_reads(merged, want)
    for rows in parts:  # merged, then split: the worker's order
        _check_reads(split._report_rows(_fresh(merged), rows), _split(want, rows))


def test_classified_values_and_shared_rows_are_rendered_the_same_when_read() -> None:
    """The card contract: classified columns redacted, rows breaking both cross-field rules (rendered once
    for the whole frame, per rule for a sample), large enough for ``cases_of`` to stop early."""
    contract = load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml")
    df = pl.concat([card_batch()] * 30, how="vertical")
    plan = compile_plan(contract)
    report = plan.validate(df)
    eager = plan.validate(df).failure_cases
    assert eager.filter(pl.col("failure_case").str.contains("REDACTED")).height
    _check_reads(report, eager)
    rows = np.arange(df.height // 3, df.height // 2)
    _check_reads(split._report_rows(_fresh(report), rows), _split(eager, rows))


def test_validation_renders_no_case_until_read() -> None:
    """The worker's path (validate, split, samples) renders only the sampled rows; the frame renders once."""
    contract = load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml")
    df = pl.concat([card_batch()] * 30, how="vertical")
    plan = compile_plan(contract)
    rendered = mock.Mock(side_effect=failures.Reporter.row_cases)  # every rendering: whole frames and samples

    def counted(self: failures.Reporter, *args: object) -> pl.DataFrame:
        return rendered(self, *args)  # type: ignore[no-any-return]

    with mock.patch.object(failures.Reporter, "row_cases", counted):
        report = plan.validate(df)
        part = split._report_rows(report, np.arange(df.height // 2))
        routed = report.replace(passed=False)  # as windows.route and the policy control amend a report
        assert rendered.call_count == 0
        assert routed.cases is report.cases
        rules = set(report.violations.explode().drop_nulls().to_list())
        samples = {rule: part.cases_of(rule, 2) for rule in rules}
        assert sum(s.height == 2 for s in samples.values()) > 2
        # one rendering for every rule's sample, of the sampled rows only
        specs = rendered.call_args.args[-1]
        assert rendered.call_count == 1 and sum(len(rows) for _, rows in specs) <= 2 * len(rules)
        rendered.reset_mock()
        frames = [None] * 4

        def read(i: int) -> None:
            frames[i] = report.failure_cases

        threads = [threading.Thread(target=read, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert rendered.call_count == 1 and all(f is frames[0] for f in frames)
    whole = split._report_rows(report, np.arange(df.height // 2)).failure_cases
    for rule, sample in samples.items():
        assert_frame_equal(sample, whole.filter(pl.col("rule") == rule).head(2))


def test_event_samples_are_listed_without_a_frame() -> None:
    """``case_records`` (the worker's event samples) lists a few cases per rule from their texts: no frame is built
    for them (``listed_cases``), the frame is not rendered, and the dicts are those of ``cases_of(...).to_dicts()``
    (redacted values and rows breaking both cross-field rules included)."""
    contract = load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml")
    df = pl.concat([card_batch()] * 30, how="vertical")
    plan = compile_plan(contract)
    report = plan.validate(df)
    rules = sorted(set(report.violations.explode().drop_nulls().to_list()))
    assert len(rules) > 2
    built = mock.Mock(side_effect=lazy.listed_cases)
    with mock.patch("streams.validation.render.listed_cases", built):
        listed = {rule: report.case_records(rule, 20) for rule in rules}
    assert built.call_count == 0 and report.cases._frame is None
    assert sum(len(v) == 20 for v in listed.values()) > 2
    assert any("REDACTED" in str(case["failure_case"]) for cases in listed.values() for case in cases)
    for rule in rules:
        assert listed[rule] == plan.validate(df).cases_of(rule, 20).to_dicts()
