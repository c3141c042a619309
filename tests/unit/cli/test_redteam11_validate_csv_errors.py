"""Red team 11: `qstreams validate` on CSV files it cannot read says why in the CLI user's terms (exit 2).

A UTF-16 file was read with a mojibake header and judged (exit 1, "missing columns: ..." for every property);
an unclosed quote or a ragged row printed polars' advice to its Python callers (``infer_schema_length``,
``ignore_errors``, ``truncate_ragged_lines=True``), which nobody running the command can act on.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli.main import app

CONTRACT = """apiVersion: v3.1.0
kind: DataContract
id: urn:x
version: 1.0.0
status: draft
schema:
  - name: t
    properties:
      - {name: id, logicalType: string, required: true}
      - {name: n, logicalType: integer}
"""

CASES = {
    "utf16.csv": ("id,n\na,1\n".encode("utf-16"), "UTF-16"),
    "unclosed_quote.csv": (b'id,n\n"a,1\nb,2\n', "quoted field is not closed"),
    "ragged_row.csv": (b"id,n\na,1\nb,2,3,4\n", "more fields than the header"),
    "latin1.csv": ("id,n\ncaf\xe9,1\n".encode("latin-1"), "not UTF-8"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_an_unreadable_csv_is_a_usage_error_that_says_why(name: str, tmp_path: Path) -> None:
    data, cause = CASES[name]
    (tmp_path / "c.yaml").write_text(CONTRACT, "utf-8")
    (tmp_path / name).write_bytes(data)
    result = CliRunner().invoke(app, ["validate", "-c", str(tmp_path / "c.yaml"), str(tmp_path / name)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot read {tmp_path / name} as csv: ")
    assert cause in lines[0]
