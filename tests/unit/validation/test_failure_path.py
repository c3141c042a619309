"""The engine's per-batch fixed costs (issue 13, item 1): what a batch does not rebuild."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

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
