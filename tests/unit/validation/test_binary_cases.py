"""Binary values in a file or an Arrow message where the contract declares text: their failure cases render.

Found while reviewing the failure path (issue 13): a frame check's case (an ``expression`` rule's row as JSON) of
a row holding bytes went through polars' ``struct.json_encode``, which panics on binary values ("Writing
BinaryView to JSON"). The panic is a ``BaseException``: the engine's guard did not catch it and
``qstreams validate`` of a Parquet file with a binary column crashed with a Rust backtrace. Bytes in lists and
structs lost their cases too. Binary values are now shown as hex text at any depth, as a binary column's own
``dtype`` cases show them.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.contracts.loader import parse_contract
from streams.validation import compile_plan
from streams.validation.report import has_binary, jsonable

CONTRACT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:binary
name: binary
version: 1.0.0
status: active
schema:
  - name: orders
    properties:
      - {name: a, logicalType: integer}
      - {name: b, logicalType: string}
      - {name: tags, logicalType: array, items: {logicalType: string}}
      - {name: s, logicalType: object, properties: [{name: x, logicalType: string}]}
    quality:
      - {type: custom, engine: expression, implementation: "a > 1"}
"""


def table() -> pa.Table:
    return pa.table({
        "a": pa.array([1, 2, 3], pa.int64()),
        "b": pa.array([b"x", b"y", None], pa.binary()),
        "tags": pa.array([[b"x", None], [b"y"], None], pa.list_(pa.binary())),
        "s": pa.array([{"x": b"q"}, {"x": None}, None], pa.struct([("x", pa.binary())])),
    })  # fmt: skip


def test_binary_values_are_hex_in_every_failure_case() -> None:
    report = compile_plan(parse_contract(CONTRACT, path="c.yaml")).validate(pl.from_arrow(table()))
    cases = {(r["rule"], r["index"]): r["failure_case"] for r in report.failure_cases.to_dicts()}
    assert cases == {
        ("b:dtype", 0): "78", ("b:dtype", 1): "79",
        ("tags:dtype", 0): '["78",null]', ("tags:dtype", 1): '["79"]',
        ("orders:expression#0", 0): '{"a":1,"b":"78","tags":["78",null],"s":{"x":"71"}}',
    }  # fmt: skip


def test_validating_a_parquet_file_with_binary_columns_reports_instead_of_crashing(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(CONTRACT)
    pq.write_table(table(), tmp_path / "d.parquet")
    res = CliRunner().invoke(app, ["validate", "-c", str(tmp_path / "c.yaml"), str(tmp_path / "d.parquet"),
                                   "--format", "json"])  # fmt: skip
    assert res.exit_code == 1, res.output
    out = json.loads(res.stdout)
    cases = {(c["rule"], c["index"]): c["failure_case"] for c in out["failure_cases"]}
    assert cases[("s.x:dtype", 0)] == "71" and cases[("tags:dtype", 0)] == '["78",null]'
    assert cases[("orders:expression#0", 0)] == '{"a":1,"b":"78","tags":["78",null],"s":{"x":"71"},"s.x":"71"}'
    assert len(cases) == 6


@pytest.mark.parametrize(
    ("dtype", "binary"),
    [(pl.Binary, True), (pl.List(pl.Binary), True), (pl.Array(pl.Binary, 2), True),
     (pl.Struct({"x": pl.Int8, "y": pl.List(pl.Binary)}), True), (pl.String, False),
     (pl.Struct({"x": pl.List(pl.String)}), False)],
)  # fmt: skip
def test_jsonable_leaves_no_binary_and_changes_nothing_else(dtype: pl.DataType, binary: bool) -> None:
    assert has_binary(dtype) is binary
    s = pl.Series("v", [None], dtype=dtype)
    out = s.to_frame().select(jsonable(pl.col("v"), dtype).alias("v")).to_series()
    assert not has_binary(out.dtype) and (out.dtype == dtype) is not binary
    assert out.to_frame().select(pl.struct("v").struct.json_encode()).item() == '{"v":null}'
