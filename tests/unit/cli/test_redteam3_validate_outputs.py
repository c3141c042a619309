"""Red team 3: ``qstreams validate --out-valid / --out-invalid`` put every row of the file in exactly one of them,
and ``--out-invalid`` shows a wrong-typed value as it was found: it used to write a null in its place (``x`` in a
CSV integer column, ``"x"`` in an NDJSON one), losing the very value that made the row invalid."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from streams.cli.main import app

CONTRACT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:redteam3:outputs
version: 1.0.0
status: draft
schema:
  - name: t
    properties:
      - name: id
        logicalType: integer
        required: true
        logicalTypeOptions: {minimum: 0}
      - name: name
        logicalType: string
"""

ROWS = [{"id": 1, "name": "a"}, {"id": "x", "name": "b"}, {"id": -5, "name": "c"}, {"id": 4, "name": "d"}]


def _write(path: Path) -> None:
    if path.suffix == ".csv":
        path.write_text("id,name\n" + "".join(f"{r['id']},{r['name']}\n" for r in ROWS))
    elif path.suffix == ".ndjson":
        path.write_text(
            "".join(pl.DataFrame([{"id": str(r["id"]), "name": r["name"]}]).write_ndjson() for r in ROWS)
            .replace('"id":"1"', '"id":1')
            .replace('"id":"-5"', '"id":-5')
            .replace('"id":"4"', '"id":4')
        )
    else:
        pl.DataFrame({"id": [1.0, 2.5, -5.0, 4.0], "name": ["a", "b", "c", "d"]}).write_parquet(path)


@pytest.mark.parametrize("suffix", [".csv", ".ndjson", ".parquet"])
def test_every_row_goes_to_exactly_one_output_with_its_values(tmp_path: Path, suffix: str) -> None:
    contract, data = tmp_path / "c.yaml", tmp_path / f"d{suffix}"
    contract.write_text(CONTRACT)
    _write(data)
    valid, invalid = tmp_path / f"valid{suffix}", tmp_path / f"invalid{suffix}"
    args = ["validate", "-c", str(contract), str(data), "--out-valid", str(valid), "--out-invalid", str(invalid)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    read = {".csv": pl.read_csv, ".ndjson": pl.read_ndjson, ".parquet": pl.read_parquet}[suffix]
    ok, bad = read(valid), read(invalid)
    assert sorted(ok.get_column("name").to_list() + bad.get_column("name").to_list()) == ["a", "b", "c", "d"]
    assert ok.get_column("name").to_list() == ["a", "d"]
    assert ok.schema["id"].is_numeric()  # the valid rows keep their type
    found = dict(zip(bad.get_column("name").to_list(), bad.get_column("id").cast(pl.String).to_list(), strict=True))
    assert found == {"b": {".parquet": "2.5"}.get(suffix, "x"), "c": {".parquet": "-5.0"}.get(suffix, "-5")}
    violations = bad.get_column("_violations")
    if violations.dtype == pl.String:  # CSV: the list joined with ';'
        violations = violations.str.split(";")
    assert violations.to_list() == [["id:dtype"], ["id:minimum"]]


ARRAYS = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:redteam3:arrays
version: 1.0.0
status: draft
schema:
  - name: t
    properties:
      - name: id
        logicalType: integer
      - name: nums
        logicalType: array
        items: {logicalType: integer}
      - name: tags
        logicalType: array
        items: {logicalType: string}
"""


def test_arrays_written_to_csv_validate_again(tmp_path: Path) -> None:
    """--out-valid to CSV joins arrays with ';' (an array of integers crashed the writer: 'CSV format does not
    support nested data'); validating that CSV read 'a;b' as text, failing dtype on every row."""
    contract, data = tmp_path / "c.yaml", tmp_path / "d.ndjson"
    contract.write_text(ARRAYS)
    data.write_text('{"id":1,"nums":[1,2],"tags":["a","b"]}\n{"id":2,"nums":[5],"tags":["c"]}\n')
    valid = tmp_path / "valid.csv"
    first = CliRunner().invoke(app, ["validate", "-c", str(contract), str(data), "--out-valid", str(valid)])
    assert first.exit_code == 0, first.output
    assert valid.read_text() == "id,nums,tags\n1,1;2,a;b\n2,5,c\n"
    again = CliRunner().invoke(app, ["validate", "-c", str(contract), str(valid), "--format", "json"])
    assert again.exit_code == 0, again.output


def test_a_bad_array_element_in_csv_fails_its_row(tmp_path: Path) -> None:
    contract, data = tmp_path / "c.yaml", tmp_path / "d.csv"
    contract.write_text(ARRAYS)
    data.write_text("id,nums,tags\n1,1;2,a\n2,1;x,b\n3,,\n")
    result = CliRunner().invoke(app, ["validate", "-c", str(contract), str(data), "--format", "json"])
    assert result.exit_code == 1, result.output
    out = json.loads(result.stdout)
    assert (out["valid_rows"], out["invalid_rows"]) == (2, 1)
    assert [(c["index"], c["column"], c["failure_case"]) for c in out["failure_cases"]] == [(1, "nums", "1;x")]
