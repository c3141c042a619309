"""Red team 3: Parquet encodings that must not change a verdict. An array of dictionary-encoded strings (what
pyarrow writes for ``pa.dictionary`` items, and Spark for repeated text) was read as ``List(Categorical)`` and failed
``dtype('List(String)')`` on every row; plain, large and dictionary encodings are judged alike."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from streams.cli.main import app

CONTRACT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:redteam3:parquet
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
        logicalTypeOptions: {maxLength: 2}
      - name: tags
        logicalType: array
        items: {logicalType: string}
"""

NAMES = ["a", "b", "long"]
TAGS = [["x"], ["y", "x"], []]


@pytest.mark.parametrize(
    ("name_type", "tags_type"),
    [
        (pa.string(), pa.list_(pa.string())),
        (pa.large_string(), pa.large_list(pa.large_string())),
        (pa.dictionary(pa.int32(), pa.string()), pa.list_(pa.dictionary(pa.int32(), pa.string()))),
    ],
)
def test_string_encodings_are_judged_alike(tmp_path: Path, name_type: pa.DataType, tags_type: pa.DataType) -> None:
    contract, data = tmp_path / "c.yaml", tmp_path / "d.parquet"
    contract.write_text(CONTRACT)
    names = pa.array(NAMES).dictionary_encode() if pa.types.is_dictionary(name_type) else pa.array(NAMES, name_type)
    tags = pa.array(TAGS, pa.list_(pa.string())).cast(tags_type)
    pq.write_table(pa.table({"id": pa.array([1, 2, 3], pa.int32()), "name": names, "tags": tags}), data)
    result = CliRunner().invoke(app, ["validate", "-c", str(contract), str(data), "--format", "json"])
    assert result.exit_code == 1, result.output
    out = json.loads(result.stdout)
    cases = [(c["index"], c["column"], c["failure_case"]) for c in out["failure_cases"]]
    assert cases == [(2, "name", "long")]
