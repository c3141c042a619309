"""The failure path against the engine as it was at 6891d9a (before the failure path's uniqueness masks stayed
numpy arrays, the masks stopped being stacked onto the batch and the violations were gathered without a plan):
byte-identical reports on the benchmark's contracts with random bad rows and duplicated keys.

The baseline is that commit's ``streams/validation`` package, loaded from ``git archive`` beside the current one
(as ``benchmarks/bench_engine.py --baseline`` does). Compared: every check, ``valid_mask``, ``violations``,
``gating_violations``, the whole ``failure_cases`` frame, and the first cases of each failed rule (the worker's
read: ``cases_of``)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from streams.contracts.loader import load_contract
from streams.validation import engine

ROOT = Path(__file__).resolve().parents[3]
BASELINE = "6891d9a"
CONTRACTS = {
    "card": ROOT / "contracts" / "card_transactions.odcs.yaml",
    "predictions": ROOT / "contracts" / "fraud_predictions.odcs.yaml",
    "sensors": ROOT / "benchmarks" / "contracts" / "sensor_readings.odcs.yaml",
}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``compile_plan`` of the engine at ``BASELINE`` (its package renamed ``qs_base689_validation``)."""
    folder = tmp_path_factory.mktemp("baseline")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", BASELINE, "streams/validation"], capture_output=True, check=False
    )
    if archive.returncode:
        pytest.skip(f"git archive {BASELINE} is not available here: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    package = folder / "qs_base689_validation"
    (folder / "streams" / "validation").rename(package)
    for path in package.rglob("*.py"):
        text = path.read_text().replace("streams.validation", "qs_base689_validation")
        path.write_text("" if path == package / "__init__.py" else text)
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module("qs_base689_validation.engine").compile_plan
    finally:
        sys.path.remove(str(folder))


def _bench() -> Any:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module("bench_engine")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def _same(new: Any, old: Any) -> None:
    assert [c.to_dict() for c in new.checks] == [c.to_dict() for c in old.checks]
    assert new.valid_mask.equals(old.valid_mask)
    assert new.violations.equals(old.violations)
    assert (new.gating_violations is None) == (old.gating_violations is None)
    if new.gating_violations is not None:
        assert new.gating_violations.equals(old.gating_violations)
    for check in new.checks:  # the worker's read, before the whole frame is rendered
        if not check.passed:
            assert new.cases_of(check.name, 20).equals(old.cases_of(check.name, 20)), check.name
            assert new.case_records(check.name, 20) == old.cases_of(check.name, 20).to_dicts(), check.name
    assert new.failure_cases.equals(old.failure_cases)
    assert new.failure_cases.height == old.failure_cases.height


@pytest.mark.parametrize("name", sorted(CONTRACTS))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reports_equal_the_baseline_engine(baseline: Any, name: str, seed: int) -> None:
    bench = _bench()
    contract = load_contract(CONTRACTS[name])
    plan, old = engine.compile_plan(contract), baseline(contract)
    clean, kinds = bench.frames(name, 3000, plan)
    checked = 0
    for share in (0.0, 0.01, 0.1, 0.3):
        df = bench.with_bad_rows(clean, share, kinds, seed=seed)
        key = {"card": "event_id", "predictions": "prediction_id", "sensors": "reading_id"}[name]
        if share:  # duplicated keys (a uniqueness rule: its masks, duplicateValues, cases), some of them null
            i = pl.int_range(pl.len())
            dup, null = i % (37 * seed) == 5, i % 41 == 7
            value = pl.when(dup).then(pl.col(key).first()).when(null).then(None).otherwise(pl.col(key))
            df = df.with_columns(value.alias(key))
            assert plan.validate(df).check(f"{key}:unique").failures > 0
        _same(plan.validate(df), old.validate(df))
        checked += 1
    assert checked == 4
