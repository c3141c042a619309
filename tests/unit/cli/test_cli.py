"""The `qstreams` CLI as data repos' CI uses it: exit codes, file:line findings, the JSON interface."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import polars as pl
import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.testing import Fault, generate_feature_frame, generate_feature_records

ROOT = Path(__file__).resolve().parents[3]
FEATURES = ROOT / "contracts" / "card_transactions.odcs.yaml"
runner = CliRunner()


def test_lint_ok_and_findings(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["contracts", "lint", str(ROOT / "contracts")])
    assert ok.exit_code == 0, ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        FEATURES.read_text().replace(
            "logicalTypeOptions:\n          minimum: 0\n", "logicalTypeOptions:\n          minimun: 0\n", 1
        )
    )
    res = runner.invoke(app, ["contracts", "lint", str(bad), str(FEATURES)])
    assert res.exit_code == 1
    (line,) = [ln for ln in res.stdout.splitlines() if ln.startswith(str(bad))]
    lineno = int(line.split(":")[1])
    assert "minimun" in bad.read_text().splitlines()[lineno - 1]
    assert "unknown field 'minimun'" in line
    missing = runner.invoke(app, ["contracts", "lint", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2


def test_validate_parquet_clean_passes_and_json_is_the_documented_shape(tmp_path: Path) -> None:
    data = tmp_path / "clean.parquet"
    generate_feature_frame(500, seed=2).write_parquet(data)
    res = runner.invoke(app, ["validate", "--contract", str(FEATURES), str(data), "--format", "json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"semantics", "semantics_note", "contract", "schema", "rows", "valid_rows", "invalid_rows",
                        "passed", "checks", "failure_cases"}  # fmt: skip
    assert set(out["contract"]) == {"id", "version", "sha256"}
    assert out["rows"] == out["valid_rows"] == 500 and out["passed"] is True
    assert {"name", "column", "check", "severity", "failures", "failure_rate", "passed"} <= set(out["checks"][0])


def test_validate_ndjson_with_faults_exits_1_and_writes_valid_and_invalid_rows(tmp_path: Path) -> None:
    faults = {Fault.OUT_OF_RANGE: 0.02, Fault.WRONG_TYPE: 0.01, Fault.MISSING_FIELD: 0.01, Fault.INVALID_ENUM: 0.01}
    gen = generate_feature_records(1000, seed=5, faults=faults)
    data = tmp_path / "batch.jsonl"
    data.write_bytes(b"\n".join(orjson.dumps(r) for r in gen.records))
    good, bad = tmp_path / "good.parquet", tmp_path / "bad.csv"
    args = ["validate", "-c", str(FEATURES), str(data), "--format", "json", "--max-cases", "3"]
    res = runner.invoke(app, [*args, "--out-valid", str(good), "--out-invalid", str(bad)])
    assert res.exit_code == 1, res.output
    out = json.loads(res.stdout)
    assert out["invalid_rows"] == len(gen.expected_invalid) and out["passed"] is False
    assert len(out["failure_cases"]) == 3
    assert pl.read_parquet(good).height == 1000 - len(gen.expected_invalid)
    invalid = pl.read_csv(bad)
    assert invalid.height == len(gen.expected_invalid) and "_violations" in invalid.columns
    # classified values never reach the output
    cases = json.dumps(out["failure_cases"])
    for record in gen.records:
        assert str(record.get("card_hash")) not in cases


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["validate", "-c", "missing.yaml", "x.parquet"], "cannot read the contract"),
        (["validate", "-c", str(FEATURES), "data.xlsx"], "cannot tell the format"),
        (["validate", "-c", str(FEATURES), "--schema", "nope", "x.parquet"], "no schema object 'nope'"),
    ],
)
def test_validate_usage_errors_exit_2(tmp_path: Path, args: list[str], fragment: str) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert fragment in res.output


def test_validate_reports_missing_columns_instead_of_a_traceback(tmp_path: Path) -> None:
    data = tmp_path / "partial.csv"
    generate_feature_frame(50, seed=3).drop("card_hash", "amount").with_columns(extra=pl.lit(1)).write_csv(data)
    res = runner.invoke(app, ["validate", "-c", str(FEATURES), str(data), "--format", "json"])
    assert res.exit_code == 1, res.output
    out = json.loads(res.stdout)
    cases = {(c["check"], c["failure_case"]) for c in out["failure_cases"]}
    assert ("column_in_dataframe", "card_hash") in cases and ("column_in_dataframe", "amount") in cases


def test_validate_a_pandera_native_schema_opted_in_by_module_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "qs_orders_schema.py").write_text(
        "import pandera.polars as pa\n\n"
        "class Orders(pa.DataFrameModel):\n"
        "    order_id: str = pa.Field(unique=True)\n"
        "    amount: float = pa.Field(gt=0, le=1000)\n"
    )
    data = tmp_path / "orders.ndjson"
    data.write_text('{"order_id": "a", "amount": 5}\n{"order_id": "b", "amount": -1}\n')
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["validate", "--pandera", "qs_orders_schema:Orders", str(data), "--format", "json"])
    assert res.exit_code == 1, res.output
    out = json.loads(res.stdout)
    assert out["invalid_rows"] == 1
    assert [c["check"] for c in out["checks"] if c["failures"]] == ["greater_than(0)"]
    both = runner.invoke(app, ["validate", "--pandera", "x:y", "-c", str(FEATURES), str(data)])
    assert both.exit_code == 2
