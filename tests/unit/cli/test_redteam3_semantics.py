"""Every ``qstreams validate`` output says it is file semantics (the file judged as a whole, pandera's), not the
stream's per-record / per-event-time-window semantics (docs/semantics.md)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from streams.cli.main import app

from .test_cli_output import files


def test_validate_json_states_file_semantics(tmp_path: Path) -> None:
    contract, data = files(tmp_path)
    result = CliRunner().invoke(app, ["validate", "-c", str(contract), str(data), "--format", "json"])
    assert result.exit_code == 1, result.output
    out = json.loads(result.stdout)
    assert out["semantics"] == "file"
    assert "as a whole" in out["semantics_note"] and "event-time window" in out["semantics_note"]


def test_validate_table_states_file_semantics(tmp_path: Path) -> None:
    contract, data = files(tmp_path)
    result = CliRunner().invoke(app, ["validate", "-c", str(contract), str(data)])
    assert result.exit_code == 1, result.output
    assert "file semantics" in result.stdout.splitlines()[0]


def test_validate_help_states_file_semantics_and_exit_codes() -> None:
    result = CliRunner().invoke(app, ["validate", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "file semantics" in text and "exit codes: 0" in text.lower() and "2 on a usage" in text


def test_profile_drift_states_file_semantics(tmp_path: Path) -> None:
    from streams.testing import generate_feature_frame
    from tests.unit.profiles.test_profile_reference import FEATURES

    ref, cur, out = tmp_path / "ref.parquet", tmp_path / "cur.parquet", tmp_path / "f.qsref"
    generate_feature_frame(2_000, seed=1).write_parquet(ref)
    generate_feature_frame(1_000, seed=2).write_parquet(cur)
    runner = CliRunner()
    assert runner.invoke(app, ["profile", "build", str(ref), "-c", str(FEATURES), "-o", str(out)]).exit_code == 0
    as_json = runner.invoke(app, ["profile", "drift", str(cur), "-c", str(FEATURES), "-r", str(out), "--json"])
    assert as_json.exit_code in (0, 1), as_json.output
    assert json.loads(as_json.stdout)["semantics"] == "file"
    table = runner.invoke(app, ["profile", "drift", str(cur), "-c", str(FEATURES), "-r", str(out)])
    assert "file semantics" in table.stdout.splitlines()[-1]


def test_lint_help_states_exit_codes() -> None:
    result = CliRunner().invoke(app, ["contracts", "lint", "--help"])
    text = " ".join(result.stdout.split())
    assert result.exit_code == 0 and "Exit codes: 0 clean, 1 problems found, 2 usage error" in text
