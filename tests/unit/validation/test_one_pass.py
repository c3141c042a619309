"""The engine's failure path: one pass over the batch, however many rules fail (issue 13, item 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from streams.contracts.loader import load_contract
from streams.contracts.model import Field, Op, Rule, check_label
from streams.validation import engine
from streams.validation.failures import repeated_hashes, verify_duplicates

ROOT = Path(__file__).resolve().parents[3]


def sensor_batch(n: int = 50) -> pl.DataFrame:
    """Rows of ``benchmarks/contracts/sensor_readings.odcs.yaml``; rows 1-5 each break other rules."""
    i = list(range(n))
    df = pl.DataFrame({
        "reading_id": [f"r-{v:09d}" for v in i],
        "device_id": [f"dev-{v:06x}" for v in i],
        "site": ["north", "south", "east", "west"] * (n // 4) + ["north"] * (n % 4),
        "reading_ts": pl.Series([1_767_225_600_000 + v * 1000 for v in i]).cast(pl.Datetime("ms", "UTC")),
        "temperature_c": [20.0] * n,
        "humidity_pct": [50.0] * n,
        "battery_v": [3.7] * n,
        "firmware": ["1.2.3"] * n,
        "status": ["ok"] * n,
    })  # fmt: skip
    broken = {
        "temperature_c": (1, 120.0), "site": (2, "mars"), "reading_id": (3, "r-000000000"),  # = row 0's id
        "battery_v": (4, None), "status": (5, "fault"),
    }  # fmt: skip
    return df.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value)).otherwise(pl.col(c)).alias(c)
        for c, (row, value) in broken.items()
    )


def test_many_failing_rules_cost_one_pass_on_a_fresh_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: a first pass counted, then a second pass added the masks of the rules that failed
    (and a third counted the duplicates). Now one pass computes every mask, whatever fails."""
    contract = load_contract(ROOT / "benchmarks" / "contracts" / "sensor_readings.odcs.yaml")
    passes: list[int] = []
    real = engine.evaluate

    def counting(df: pl.DataFrame, exprs: dict[int, pl.Expr], *args: Any, **kwargs: Any) -> pl.DataFrame:
        passes.append(len(exprs))
        return real(df, exprs, *args, **kwargs)

    monkeypatch.setattr(engine, "evaluate", counting)
    plan = engine.compile_plan(contract)
    report = plan.validate(sensor_batch())
    assert len(passes) == 1, passes
    failed = {c.name for c in report.checks if not c.passed}
    assert failed == {
        "temperature_c:maximum", "site:invalidValues", "reading_id:unique", "battery_v:required",
        "fault_has_low_battery_or_heat",
    }  # fmt: skip
    assert report.invalid_rows == 6  # rows 0 and 3 share an id
    assert report.violations.to_list()[:6] == [
        ["reading_id:unique"], ["temperature_c:maximum"], ["site:invalidValues"], ["reading_id:unique"],
        ["battery_v:required"], ["fault_has_low_battery_or_heat"],
    ]  # fmt: skip
    assert sorted(report.failure_cases.get_column("index").to_list()) == [0, 1, 2, 3, 4, 5]


def unique_rule(*columns: str) -> Rule:
    args: tuple[Any, ...] = (columns,) if len(columns) > 1 else ()
    column = columns[0] if len(columns) == 1 else None
    return Rule(f"{'+'.join(columns)}:unique", Op.UNIQUE, args, check_label(Op.UNIQUE, args, None), column=column)


def test_hash_candidates_that_are_not_duplicates_do_not_fail() -> None:
    """A hash collision puts rows among the candidates; comparing the keys clears them."""
    frame = pl.DataFrame({"k": ["a", "b", "a", "c", None]})
    candidates = pl.Series("m", [True, True, True, True, False])  # b and c as if their hashes collided
    got, value = verify_duplicates(frame, candidates, unique_rule("k"))
    assert got.to_list() == [True, False, True, False, False] and value == 1
    none, value = verify_duplicates(frame, pl.Series("m", [False] * 5), unique_rule("k"))
    assert none.to_list() == [False] * 5 and value == 0


def test_composite_keys_are_verified_on_the_whole_tuple() -> None:
    frame = pl.DataFrame({"a": [1, 1, 1, 2], "b": ["x", "x", "y", "x"]})
    got, value = verify_duplicates(frame, pl.Series("m", [True] * 4), unique_rule("a", "b"))
    assert got.to_list() == [True, True, False, False] and value == 1


def test_text_uniqueness_through_the_engine_matches_exact_duplicates() -> None:
    from streams.contracts.model import Contract, SchemaObject

    fields = (Field("k", "string", pl.String(), unique=True),)
    rules = (Rule("k:dtype", Op.DTYPE, (), check_label(Op.DTYPE, (), pl.String()), "k"), unique_rule("k"))
    so = SchemaObject(name="o", topic="o.v1", fields=fields, rules=rules)
    plan = engine.compile_plan(Contract(id="urn:t", version="1.0.0", status="active", sha256="f" * 64, schemas=(so,)))
    values = [f"v{i % 997}" for i in range(1000)] + [None, None]
    report = plan.validate(pl.DataFrame({"k": values}))
    expected = pl.Series(values).is_duplicated() & pl.Series(values).is_not_null()
    assert report.valid_mask.to_list() == (~expected).to_list()
    assert report.check("k:unique").value == 3  # 6 rows of 3 repeated values - 3 distinct


def test_contract_validate_compiles_once_per_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.validation import backend

    contract = load_contract(ROOT / "benchmarks" / "contracts" / "sensor_readings.odcs.yaml")
    compiled: list[str | None] = []
    real = backend.compile_plan

    def counting(c: Any, schema: str | None = None) -> engine.CompiledPlan:
        compiled.append(schema)
        return real(c, schema)

    monkeypatch.setattr(backend, "compile_plan", counting)
    first, second = contract.validate(sensor_batch()), contract.validate(sensor_batch())
    assert len(compiled) == 1
    assert first.checks == second.checks and first.failure_cases.equals(second.failure_cases)
    other = load_contract(ROOT / "benchmarks" / "contracts" / "sensor_readings.odcs.yaml")  # equal, another object
    assert other.validate(sensor_batch()).checks == first.checks and len(compiled) == 2


@pytest.mark.parametrize("rules", [5, 20])  # a table of every bit code; the codes present only
def test_violation_lists_match_the_rules_each_row_breaks(rules: int) -> None:
    from streams.contracts.model import Contract, SchemaObject, Severity

    fields = (Field("x", "integer", pl.Int64()),)
    made = [
        Rule(f"r{i}", Op.LE, (i,), check_label(Op.LE, (i,), None), "x",
             severity=Severity.WARNING if i % 3 == 0 else Severity.ERROR)
        for i in range(rules)
    ]  # fmt: skip
    dtype = Rule("x:dtype", Op.DTYPE, (), check_label(Op.DTYPE, (), pl.Int64()), "x")
    so = SchemaObject(name="o", topic="o.v1", fields=fields, rules=(dtype, *made))
    plan = engine.compile_plan(Contract(id="urn:t", version="1.0.0", status="active", sha256="f" * 64, schemas=(so,)))
    values = [v % (rules + 7) for v in range(3 * rules + 11)]  # x = v breaks r0 .. r(v-1)
    report = plan.validate(pl.DataFrame({"x": values}))
    assert report.violations.to_list() == [[f"r{i}" for i in range(min(v, rules))] for v in values]
    assert report.gating().to_list() == [[f"r{i}" for i in range(min(v, rules)) if i % 3] for v in values]
    assert report.valid_mask.to_list() == [v <= 1 for v in values]


def test_repeated_hashes_are_found_by_sorting_and_nulls_never_repeat() -> None:
    hashes = pl.Series("h", [5, None, 7, 5, None, 9, 7, 7], dtype=pl.UInt64)
    got = repeated_hashes(hashes)
    assert got is not None and got.to_list() == [True, False, True, True, False, False, True, True]
    assert repeated_hashes(pl.Series("h", [1, None, None, 2], dtype=pl.UInt64)) is None
    assert repeated_hashes(pl.Series("h", [], dtype=pl.UInt64)) is None


def test_a_clean_batch_runs_no_duplicate_search_and_a_dirty_one_finds_every_duplicate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Uniqueness over text keys: the pass yields the keys' hashes; the duplicated rows are searched
    (and checked on their keys) only when a hash repeats."""
    contract = load_contract(ROOT / "benchmarks" / "contracts" / "sensor_readings.odcs.yaml")
    plan = engine.compile_plan(contract)
    checked: list[int] = []
    real = engine.verify_rows

    def counting(frame: pl.DataFrame, candidates: np.ndarray, rule: Rule, *hashes: pl.Series) -> tuple[np.ndarray, int]:
        checked.append(len(candidates))  # the candidate rows
        return real(frame, candidates, rule, *hashes)

    monkeypatch.setattr(engine, "verify_rows", counting)
    clean = sensor_batch().with_columns(
        pl.Series("reading_id", [f"r-{v:09d}" for v in range(50)]), status=pl.lit("ok"), site=pl.lit("north"),
        temperature_c=pl.lit(20.0), battery_v=pl.lit(3.7),
    )  # fmt: skip
    assert plan.validate(clean).invalid_rows == 0 and checked == []
    ids = [f"r-{v % 20:09d}" if v < 45 else None for v in range(50)]  # 45 ids over 20 keys, 5 nulls
    report = plan.validate(clean.with_columns(pl.Series("reading_id", ids)))
    repeated = pl.Series(ids).is_duplicated() & pl.Series(ids).is_not_null()
    assert checked == [int(repeated.sum())]
    assert report.check("reading_id:unique").failures == int(repeated.sum())
    assert report.check("reading_id:unique").value == 45 - 20  # rows - distinct, nulls ignored
    assert report.valid_mask.to_list() == [not r and i < 45 for i, r in enumerate(repeated.to_list())]


def test_required_over_a_column_without_nulls_is_not_computed_and_nan_still_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A `required` rule over a non-float column with no null is answered by the null count polars
    keeps: it is left out of the pass. With nulls it runs; over a float column NaN fails it too."""
    contract = load_contract(ROOT / "benchmarks" / "contracts" / "sensor_readings.odcs.yaml")
    plan = engine.compile_plan(contract)
    names = {k: s.rule.name for k, s in enumerate(plan.slots)}
    passes: list[set[str]] = []
    real = engine.evaluate

    def recording(df: pl.DataFrame, exprs: dict[int, pl.Expr], *args: Any, **kwargs: Any) -> pl.DataFrame:
        passes.append({names[k] for k in exprs})
        return real(df, exprs, *args, **kwargs)

    monkeypatch.setattr(engine, "evaluate", recording)
    batch = sensor_batch()
    report = plan.validate(batch)
    assert "site:required" not in passes[-1] and report.check("site:required").passed
    assert "battery_v:required" in passes[-1]  # a float column: NaN is missing too
    assert report.check("battery_v:required").failures == 1
    nulls = pl.when(pl.int_range(pl.len()) < 3).then(None).otherwise(pl.lit("north"))
    report = plan.validate(batch.with_columns(site=nulls))
    assert "site:required" in passes[-1] and report.check("site:required").failures == 3
    report = plan.validate(batch.with_columns(battery_v=pl.lit(float("nan"))))
    assert report.check("battery_v:required").failures == 50
