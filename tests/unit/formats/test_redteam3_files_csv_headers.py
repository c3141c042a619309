"""Red team 3: CSV headers. A header repeated (``id,id``) was read by polars as ``id`` and ``id_duplicated_0``: the
second column was never judged (its ``x`` passed unseen). Such a file is refused, naming the column."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.contracts.loader import load_contract
from streams.errors import DataFormatError
from streams.formats.files import read_table

CONTRACT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:redteam3:headers
version: 1.0.0
status: draft
schema:
  - name: t
    properties:
      - name: id
        logicalType: integer
      - name: id_duplicated_0
        logicalType: string
"""


def _schema(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "c.yaml"
    path.write_text(CONTRACT)
    return load_contract(path).schema()


def test_a_repeated_header_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("\ufeffid,name,id\n1,a,x\n")
    with pytest.raises(DataFormatError, match=r"d\.csv:1: the header names column 'id' 2 times"):
        read_table(data, _schema(tmp_path))


def test_a_header_that_only_looks_renamed_is_read(tmp_path: Path) -> None:
    data = tmp_path / "d.tsv"
    data.write_text("id\tid_duplicated_0\n1\tx\n")
    assert read_table(data, _schema(tmp_path)).rows() == [(1, "x")]
