"""Red team 3: Arrow IPC files (``.arrow``, ``.feather``: what pyarrow, polars and pandas write) were refused as an
unknown extension; they are read as Parquet is (the file's types, conformed per value) and written by
``--out-valid x.arrow``."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.feather as feather
import pytest
from typer.testing import CliRunner

from streams.cli.main import app

CONTRACT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:redteam3:arrow
version: 1.0.0
status: draft
schema:
  - name: t
    properties:
      - name: id
        logicalType: integer
        required: true
      - name: name
        logicalType: string
"""


@pytest.mark.parametrize("suffix", [".arrow", ".feather"])
def test_an_arrow_ipc_file_is_validated_like_parquet(tmp_path: Path, suffix: str) -> None:
    contract = tmp_path / "c.yaml"
    contract.write_text(CONTRACT)
    table = pa.table({"id": pa.array([1.0, 2.5, None]), "name": pa.array(["a", "b", "c"]).dictionary_encode()})
    verdicts = {}
    for data in (tmp_path / f"d{suffix}", tmp_path / "d.parquet"):
        feather.write_feather(table, data) if data.suffix != ".parquet" else pl.from_arrow(table).write_parquet(data)
        out_valid = tmp_path / f"valid-{data.suffix[1:]}{suffix}"
        args = ["validate", "-c", str(contract), str(data), "--format", "json", "--out-valid", str(out_valid)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1, result.output
        out = json.loads(result.stdout)
        verdicts[data.suffix] = (out["valid_rows"], [(c["index"], c["check"]) for c in out["failure_cases"]])
        assert pl.read_ipc(out_valid).rows() == [(1.0, "a")]
    assert verdicts[suffix] == verdicts[".parquet"] == (1, [(1, "dtype('Int64')"), (2, "not_nullable")])
