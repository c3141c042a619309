"""Red team 3: a ``.json`` file (listed as supported) holding a JSON array of records, the most common JSON export,
was refused as 'line is not a JSON object (NOT_OBJECT ... an array)', or, pretty-printed, as TRUNCATED lines. It is
read as its elements, each decoded from its text as written, as an NDJSON line is."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.contracts.loader import load_contract
from streams.errors import DataFormatError
from streams.formats.files import read_ndjson

CONTRACT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:redteam3:json-array
version: 1.0.0
status: draft
schema:
  - name: t
    properties:
      - name: id
        logicalType: integer
      - name: name
        logicalType: string
"""

RECORDS = ['{"id": 1, "name": "a"}', '{"id": "x", "name": "b"}', '{"id": 9223372036854775808}', '{"id": 2.0}']


def _read(tmp_path: Path, text: str, suffix: str = ".json"):  # type: ignore[no-untyped-def]
    contract, data = tmp_path / "c.yaml", tmp_path / f"d{suffix}"
    contract.write_text(CONTRACT)
    data.write_text(text)
    return read_ndjson(data, load_contract(contract).schema())


@pytest.mark.parametrize(
    "text",
    [
        "[" + ",".join(RECORDS) + "]",
        "\ufeff[\n  " + ",\n  ".join(RECORDS) + "\n]\n",
    ],
)
def test_a_json_array_file_is_decoded_as_its_ndjson_lines_are(tmp_path: Path, text: str) -> None:
    array = _read(tmp_path, text)
    lines = _read(tmp_path, "\n".join(RECORDS) + "\n", ".ndjson")
    assert array.frame.to_dicts() == lines.frame.to_dicts()
    assert array.mismatches.rows() == lines.mismatches.rows() == [(1, "id", '"x"'), (2, "id", "9223372036854775808")]
    assert array.frame.get_column("id").to_list() == [1, None, None, 2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[\n{"id": 1},\n 5\n]', r"d\.json:3: element is not a JSON object"),
        ('[{"id": 1} {"id": 2}]', r"d\.json:1: not a JSON array of records: expected ','"),
        ('[{"id": 1}]\n[]', r"d\.json:1: not a JSON array of records: text after"),
        ('[\n{"id": 1},\n]', r"d\.json:3: not a JSON array of records: Expecting value"),
    ],
)
def test_a_broken_json_array_names_its_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataFormatError, match=message):
        _read(tmp_path, text)


def test_an_empty_json_array_has_no_rows(tmp_path: Path) -> None:
    assert _read(tmp_path, " [ ] \n").frame.height == 0
