"""Red team 3: a CSV cell that is no value of its column's type fails ``dtype`` on its own row.

polars infers a CSV column's type from all its cells, so one cell ``x`` in an integer column made the column text
and every row failed ``dtype`` (the valid ``1`` too), and ``--out-valid`` got nothing, whereas the same records in
NDJSON (or on the stream) fail only the row holding ``x``. pandera with ``coerce=True`` reports the bad cell by its
row too (``coerce_dtype``, ``index`` 1, ``failure_case`` ``x``); the engine's ``dtype`` case is that row and value.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandera.polars as pa
import polars as pl
import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.contracts.loader import load_contract

CONTRACT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:redteam3:csv-cells
version: 1.0.0
status: draft
schema:
  - name: t
    properties:
      - name: id
        logicalType: integer
        required: true
      - name: score
        logicalType: number
      - name: flag
        logicalType: boolean
      - name: at
        logicalType: time
      - name: small
        logicalType: integer
        physicalType: int8
      - name: name
        logicalType: string
"""


def _run(tmp_path: Path, csv: str, *extra: str) -> tuple[int, dict, Path, Path]:
    contract = tmp_path / "c.yaml"
    contract.write_text(CONTRACT)
    data = tmp_path / "d.csv"
    data.write_text(csv)
    valid, invalid = tmp_path / "valid.csv", tmp_path / "invalid.csv"
    args = ["validate", "-c", str(contract), str(data), "--format", "json", "--max-cases", "100"]
    result = CliRunner().invoke(app, [*args, "--out-valid", str(valid), "--out-invalid", str(invalid), *extra])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout), valid, invalid


def _dtype_cases(out: dict) -> list[tuple[int, str, str]]:
    return [
        (c["index"], c["column"], c["failure_case"]) for c in out["failure_cases"] if c["check"].startswith("dtype")
    ]


HEADER = "id,score,flag,at,small,name\n"


def test_one_bad_integer_cell_fails_only_its_row(tmp_path: Path) -> None:
    code, out, valid, invalid = _run(tmp_path, HEADER + "1,0.5,true,12:00:00,1,a\nx,0.5,true,12:00:00,1,b\n3,,,,,c\n")
    assert code == 1
    assert (out["rows"], out["valid_rows"], out["invalid_rows"]) == (3, 2, 1)
    assert _dtype_cases(out) == [(1, "id", "x")]
    assert pl.read_csv(valid).get_column("name").to_list() == ["a", "c"]
    assert pl.read_csv(invalid).get_column("name").to_list() == ["b"]


@pytest.mark.parametrize(
    ("column", "cells", "bad"),
    [
        ("score", ["0.5", "nope", "1e3"], "nope"),
        ("flag", ["True", "yes", "false"], "yes"),
        ("at", ["12:00:00", "25:00", "08:30"], "25:00"),
        ("small", ["1", "300", "-128"], "300"),  # 300 is no int8
        ("id", ["1.0", "2.5", "1e3"], "2.5"),  # an integral number is an integer, as in JSON
    ],
)
def test_a_bad_cell_of_each_type_fails_only_its_row(tmp_path: Path, column: str, cells: list[str], bad: str) -> None:
    base = {"id": "1", "score": "0.5", "flag": "true", "at": "12:00:00", "small": "1", "name": "n"}
    rows = [",".join(cell if k == column else v for k, v in base.items()) for cell in cells]
    code, out, valid, _ = _run(tmp_path, HEADER + "\n".join(rows) + "\n")
    assert code == 1
    assert _dtype_cases(out) == [(1, column, bad)]
    assert out["valid_rows"] == 2
    assert pl.read_csv(valid).height == 2


def test_a_quoted_empty_cell_of_a_number_is_a_null(tmp_path: Path) -> None:
    # a writer quoting every field writes a missing number as "": it is a null, not a wrong-typed value
    code, out, _, _ = _run(tmp_path, HEADER + '"1","","","","","a"\n"","0.5","true","12:00","1","b"\n')
    assert code == 1
    assert _dtype_cases(out) == []
    failing = {c["name"]: c["failures"] for c in out["checks"] if c["failures"]}
    assert failing == {"id:required": 1}


def test_the_bad_rows_are_those_pandera_coerce_reports(tmp_path: Path) -> None:
    """The reference: the contract's compiled pandera schema with ``coerce=True`` on the file read by polars."""
    csv = (
        HEADER + "1,0.5,true,12:00:00,1,a\nx,0.5,true,12:00:00,1,b\n3,0.5,true,12:00:00,1,c\n4,0.5,true,12:00:00,1,d\n"
    )
    _, out, _, _ = _run(tmp_path, csv.replace("\n4,", "\n?,"))
    schema = load_contract(tmp_path / "c.yaml").to_pandera()
    coercing = schema.update_columns({"id": {"coerce": True}})
    with pytest.raises(pa.errors.SchemaErrors) as err:
        coercing.validate(pl.read_csv(tmp_path / "d.csv"), lazy=True)
    cases = err.value.failure_cases.filter(pl.col("check").str.starts_with("coerce_dtype"))
    reference = sorted(
        zip(cases.get_column("index").to_list(), cases.get_column("failure_case").to_list(), strict=True)
    )
    assert reference == [(1, "x"), (3, "?")]
    assert [(i, v) for i, _, v in _dtype_cases(out)] == reference


def test_a_classified_bad_cell_is_redacted_in_failure_cases(tmp_path: Path) -> None:
    contract = tmp_path / "c.yaml"
    contract.write_text(
        CONTRACT.replace(
            "        logicalType: integer\n        required: true",
            "        logicalType: integer\n        required: true\n        classification: pii",
        )
    )
    data = tmp_path / "d.csv"
    data.write_text("id\n1\nsecret-42\n")
    result = CliRunner().invoke(app, ["validate", "-c", str(contract), str(data), "--format", "json"])
    assert result.exit_code == 1, result.output
    assert _dtype_cases(json.loads(result.stdout)) == [(1, "id", "[REDACTED]")]
    assert "secret-42" not in result.stdout
