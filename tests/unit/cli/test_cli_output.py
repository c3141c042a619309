"""``qstreams validate`` output for CI (issue 9 "Output for CI" and "Reasons")."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import polars as pl
from rich.console import Console
from typer.testing import CliRunner

from streams.cli.main import app
from streams.cli.render import render_report, threshold_text
from streams.contracts.loader import parse_contract

LONG = "amount_with_a_rather_long_property_name_that_would_wrap_at_eighty_columns"
CONTRACT = f"""\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:cli
version: 1.0.0
status: active
schema:
  - name: orders
    properties:
      - name: {LONG}
        logicalType: number
        logicalTypeOptions: {{minimum: 0}}
        quality:
          - {{name: few_nulls, metric: nullValues, mustBeLessThan: 50, unit: percent}}
          - {{name: warn_big, metric: invalidValues, arguments: {{validValues: [-1.0, 1.0]}}, mustBe: 0,
             severity: warning}}
    quality:
      - name: share_big
        type: sql
        query: SELECT 100.0 * COUNT(*) / 4 FROM orders WHERE {LONG} > 1
        mustBeLessThan: 20
        unit: percent
      - {{name: enough_rows, metric: rowCount, mustBeGreaterThan: 5}}
"""


def files(tmp_path: Path) -> tuple[Path, Path]:
    contract = tmp_path / "c.odcs.yaml"
    contract.write_text(CONTRACT)
    data = tmp_path / "d.parquet"
    pl.DataFrame({LONG: [-1.0, 1.0, 2.0, None]}).write_parquet(data)
    return contract, data


def test_table_shows_measured_values_against_thresholds_unwrapped(tmp_path: Path) -> None:
    contract, data = files(tmp_path)
    res = CliRunner().invoke(app, ["validate", str(data), "--contract", str(contract)])
    assert res.exit_code == 1, res.output
    lines = {line.split()[0]: line for line in res.output.splitlines() if line.strip()}
    # SQL and rowCount: the measured value vs the threshold, in the threshold's unit
    assert lines["share_big"].split()[2:6] == ["batch", "25", "%", "<"] and "20 %" in lines["share_big"]
    assert "4 rows" in lines["enough_rows"] and "> 5 rows" in lines["enough_rows"]
    assert "25 %" in lines["few_nulls"] and "< 50 %" in lines["few_nulls"]
    # not a TTY: long names are neither wrapped nor truncated
    assert f"{LONG}:minimum" in lines and "…" not in res.output


def test_threshold_text() -> None:
    assert threshold_text("mustBeLessThan 5 percent") == "< 5 %"
    assert threshold_text("mustBeBetween 1 and 3 rows") == "between 1 and 3 rows"
    assert threshold_text("mustBe 0 rows") == "= 0 rows"


def test_errors_are_shown_in_the_table() -> None:
    c = parse_contract(
        textwrap.dedent(
            """\
            apiVersion: v3.1.0
            kind: DataContract
            id: urn:test:cli
            version: 1.0.0
            status: active
            schema:
              - name: t
                properties:
                  - {name: code, logicalType: string}
                quality:
                  - {name: numeric, type: sql, query: SELECT SUM(CAST(code AS INTEGER)) FROM t, mustBeGreaterThan: 0}
            """
        )
    )
    out = io.StringIO()
    render_report(c.validate(pl.DataFrame({"code": ["1", "x"]})), console=Console(file=out, width=10_000))
    [line] = [ln for ln in out.getvalue().splitlines() if ln.strip().startswith("numeric")]
    assert "error: InvalidOperationError" in line and "ERROR" in line


def test_out_invalid_lists_only_the_rules_that_made_the_row_invalid(tmp_path: Path) -> None:
    contract, data = files(tmp_path)
    bad = tmp_path / "bad.parquet"
    res = CliRunner().invoke(app, ["validate", str(data), "--contract", str(contract), "--out-invalid", str(bad)])
    assert res.exit_code == 1, res.output
    invalid = pl.read_parquet(bad)
    # row 0 (-1.0) breaks the minimum; the warning and the percent rule (which passed) are not reasons
    assert invalid[LONG].to_list() == [-1.0]
    assert invalid["_violations"].to_list() == [[f"{LONG}:minimum"]]
