"""Red team 3: ``qstreams validate`` on an NDJSON file names the file line of the first bad record, blank lines
counted (it used to give the record's rank among the non-blank lines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.contracts.loader import load_contract
from streams.errors import DataFormatError
from streams.formats.files import read_ndjson

ROOT = Path(__file__).resolve().parents[3]


def test_the_first_bad_line_is_named_by_its_line_in_the_file(tmp_path: Path) -> None:
    schema = load_contract(ROOT / "contracts" / "fraud_predictions.odcs.yaml").schema()
    path = tmp_path / "p.ndjson"
    path.write_bytes(b'{"event_id":"a"}\n\n   \n{"event_id":"b"}\n\n[1]\n{"oops\n')
    with pytest.raises(DataFormatError) as err:
        read_ndjson(path, schema)
    assert str(err.value).startswith(f"{path}:6: line is not a JSON object (NOT_OBJECT")
    assert str(err.value).endswith("2 such line(s)")
