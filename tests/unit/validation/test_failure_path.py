"""The engine's per-batch fixed costs (issue 13, item 1): what a batch does not rebuild."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contracts.loader import load_contract
from streams.validation import engine, report

ROOT = Path(__file__).resolve().parents[3]


def predictions(n: int) -> pl.DataFrame:
    """``n`` clean rows of ``contracts/fraud_predictions.odcs.yaml``."""
    from streams.testing.generators import generate_prediction_records

    return pl.DataFrame(generate_prediction_records(n, seed=0).records)


def test_clean_batches_share_their_verdicts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: every clean batch built its all-True ``valid_mask`` and its empty ``violations`` (fresh
    Arrow offsets, ~0.25 ms at 100k rows). Now they are slices of one pair, built again only for a
    longer batch; the reports are those of a fresh build."""
    monkeypatch.setattr(report, "_CLEAN", [])
    built: list[int] = []
    real = report._empty_lists

    def counting(rows: int) -> pl.Series:
        built.append(rows)
        return real(rows)

    monkeypatch.setattr(report, "_empty_lists", counting)
    plan = engine.compile_plan(load_contract(ROOT / "contracts" / "fraud_predictions.odcs.yaml"))
    batches = [plan.conform(predictions(n)) for n in (300, 120, 300, 5, 700, 1)]
    reports = [plan.validate(df) for df in batches]
    assert built == [512, 1024], built  # the first batch, then the one longer than 512 rows
    for df, r in zip(batches, reports, strict=True):
        assert r.passed and r.invalid_rows == 0
        assert r.valid_mask.equals(pl.Series("valid", [True] * df.height, dtype=pl.Boolean))
        assert r.violations.equals(pl.Series("violations", [[]] * df.height, dtype=pl.List(pl.String)))
        assert r.gating().equals(r.violations)


def test_shared_verdicts_are_not_changed_through_a_report() -> None:
    """The kept pair is copy-on-write: a report's series changed in place leaves the next report's alone."""
    first, _ = report.clean_verdicts(10)
    first.scatter([0, 3], False)
    again, none = report.clean_verdicts(10)
    assert again.all() and again.len() == 10 and none.list.len().sum() == 0
    assert report.clean_verdicts(0)[0].len() == 0


def test_longer_batches_build_their_own_verdicts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kept pair is bounded (``_CLEAN_MAX`` rows): a batch longer than that builds its own."""
    monkeypatch.setattr(report, "_CLEAN", [])
    monkeypatch.setattr(report, "_CLEAN_MAX", 64)
    valid, none = report.clean_verdicts(100)
    assert valid.len() == none.len() == 100 and valid.all() and not report._CLEAN
    assert report.clean_verdicts(40)[0].len() == 40 and report._CLEAN[0][0].len() == 64


def card_batch(n: int = 60) -> pl.DataFrame:
    """Rows of ``contracts/card_transactions.odcs.yaml``: rows 0-9 break both of its row-level
    expressions, rows 10-14 only the first, rows 15-19 only the second; row 3 also a column rule."""
    from streams.testing import generate_feature_frame

    i = pl.int_range(pl.len())
    return generate_feature_frame(n, seed=3).with_columns(
        pl.when(i < 15).then(pl.col("txn_count_24h") + 2).otherwise(pl.col("txn_count_1h")).alias("txn_count_1h"),
        pl.when((i < 10) | i.is_between(15, 19))
        .then(pl.col("amount_sum_24h_eur") + 50)
        .otherwise(pl.col("amount_eur"))
        .alias("amount_eur"),
        pl.when(i == 3).then(pl.lit("ZZ")).otherwise(pl.col("merchant_country")).alias("merchant_country"),
    )


def test_rows_failing_several_row_expressions_are_rendered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A row-level expression's failure case is the whole row as JSON (pandera's), the costliest case to
    render (~30-50 ns a value). Before: each failing expression rendered its rows, so a row breaking two
    was rendered twice. Now the rows failing any of them are rendered once and each rule's cases are
    taken from them: the same failure cases, fewer rows rendered."""
    from streams.validation import failures

    contract = load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml")
    df = card_batch()
    with monkeypatch.context() as m:  # every rule renders its own rows, as before
        m.setattr(failures.Reporter, "_is_row", lambda self, k: False)
        expected = engine.compile_plan(contract).validate(df)
        expected.failure_cases  # noqa: B018 (rendered when read: read here, with the patch)
    rendered: list[int] = []
    real = failures.Reporter._values

    def counting(self: failures.Reporter, k: int, df: pl.DataFrame, *args: Any) -> pl.Series | None:
        if self.slots[k].rule.op is failures.Op.EXPRESSION:
            rendered.append(len(args[-1]))  # the rows rendered
        return real(self, k, df, *args)

    monkeypatch.setattr(failures.Reporter, "_values", counting)
    report = engine.compile_plan(contract).validate(df)
    assert report.failure_cases.equals(expected.failure_cases)
    assert rendered == [20], rendered  # rows 0-19 once (before: 15 + 15)
    cases = report.failure_cases
    velocity = cases.filter(pl.col("rule") == "velocity_consistent")
    within = cases.filter(pl.col("rule") == "amount_within_24h_sum")
    assert velocity.get_column("index").to_list() == list(range(15))
    assert within.get_column("index").to_list() == [*range(10), *range(15, 20)]
    shared = dict(zip(within.get_column("index"), within.get_column("failure_case"), strict=True))
    assert all(shared[i] == v for i, v in zip(velocity["index"], velocity["failure_case"], strict=True) if i < 10)
    assert '"card_hash":"[REDACTED]"' in velocity.item(0, "failure_case")
    assert report.invalid_rows == 20

    # without shared rows (a single expression fails, or none overlap) each rule renders its own
    rendered.clear()
    only = df.with_columns(pl.col("amount_sum_24h_eur") + 1000)
    alone = engine.compile_plan(contract).validate(only)
    assert alone.failure_cases.filter(pl.col("rule") == "velocity_consistent").height == 15 and rendered == [15]


def test_a_pair_stored_meanwhile_by_another_thread_does_not_shorten_the_verdicts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two threads growing the kept pair at once: a shorter pair stored right after this thread's
    must not be the one it slices (it would return fewer rows than the batch has)."""

    class Racing(list[tuple[pl.Series, pl.Series]]):
        def __setitem__(self, index: object, value: object) -> None:
            super().__setitem__(index, value)  # type: ignore[call-overload]
            shorter = pl.Series("valid", [True], dtype=pl.Boolean).new_from_index(0, 4)
            super().__setitem__(slice(None), [(shorter, report._empty_lists(4))])

    monkeypatch.setattr(report, "_CLEAN", Racing())
    valid, none = report.clean_verdicts(100)
    assert valid.len() == none.len() == 100


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_verdicts_from_numpy_masks_list_each_row_s_rules(data: st.DataObject) -> None:
    """``verdicts`` computes the codes in numpy (one byte up to 8 failing rules, 63-bit words past them): per row,
    the rules it fails in rule order, the gating ones, and whether it fails none of those."""
    rows = data.draw(st.integers(1, 40))
    count = data.draw(st.sampled_from([1, 3, 8, 9, 64, 130]))
    masks = [np.array(data.draw(st.lists(st.booleans(), min_size=rows, max_size=rows))) for _ in range(count)]
    gates = data.draw(st.lists(st.booleans(), min_size=count, max_size=count))
    failing = [(m, f"r{i}", g) for i, (m, g) in enumerate(zip(masks, gates, strict=True))]
    valid, violations, gated = report.verdicts(rows, failing, {})
    want = [[f"r{i}" for i in range(count) if masks[i][r]] for r in range(rows)]
    want_gated = [[f"r{i}" for i in range(count) if masks[i][r] and gates[i]] for r in range(rows)]
    assert violations.to_list() == want and violations.dtype == pl.List(pl.String)
    assert valid.to_list() == [not g for g in want_gated]
    assert (gated.to_list() if gated is not None else [[]] * rows) == want_gated
