"""Red team 9: a ``logicalType: time`` property read from text (a JSON string, an NDJSON line, a stream message).

JSON has no time type, so a time arrives as text (``"12:30:05.5"``). The CSV reader parsed such cells
(``HH:MM[:SS[.f]]``), but the engine had no conformance from text to ``Time``: every text time of a JSON
record failed ``dtype``, so the same records passed in a CSV file and were all quarantined on the stream.
The independent reading is Python's ``datetime.time.fromisoformat``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from streams.cli.files import read_and_validate
from streams.contracts.loader import load_contract
from streams.contracts.model import Contract
from streams.formats.decoder import Decoder, Value
from streams.validation.engine import compile_plan

CONTRACT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:redteam9:times
version: 1.0.0
status: draft
schema:
  - name: t
    properties:
      - name: at
        logicalType: time
        logicalTypeOptions: {minimum: "09:00:00"}
"""

TIMES = ["12:30", "12:30:05", "12:30:05.5", "09:00:00.000001", "23:59:59.999999", "00:00", "08:59:59.999999"]
NOT_TIMES = ["12h30", "noon", "12:30:05Z", "T12:30"]


@pytest.fixture
def contract(tmp_path: Path) -> Contract:
    path = tmp_path / "c.yaml"
    path.write_text(CONTRACT)
    return load_contract(path)


def _expected() -> tuple[list[dt.time | None], list[bool]]:
    values = [dt.time.fromisoformat(t) for t in TIMES] + [None] * len(NOT_TIMES)
    return values, [v is not None and v >= dt.time(9) for v in values]


def test_json_records_read_text_times_as_python_does(contract: Contract, tmp_path: Path) -> None:
    values, valid = _expected()
    data = tmp_path / "d.ndjson"
    data.write_text("".join(json.dumps({"at": t}) + "\n" for t in TIMES + NOT_TIMES))
    _, report, _ = read_and_validate(data, contract, contract.schema())
    assert report.valid_mask.to_list() == valid
    failed = report.failure_cases.filter(pl.col("check") == "dtype('Time')")
    assert sorted(failed.get_column("failure_case").to_list()) == sorted(NOT_TIMES)

    decoded = Decoder(contract.schema()).decode([Value(json.dumps({"at": t}).encode()) for t in TIMES + NOT_TIMES])
    conformed = compile_plan(contract).conform(decoded.frame)
    assert conformed.get_column("at").to_list() == values


def test_a_time_passes_alike_in_csv_and_ndjson(contract: Contract, tmp_path: Path) -> None:
    csv, ndjson = tmp_path / "d.csv", tmp_path / "d.ndjson"
    csv.write_text("at\n" + "".join(t + "\n" for t in TIMES + NOT_TIMES))
    ndjson.write_text("".join(json.dumps({"at": t}) + "\n" for t in TIMES + NOT_TIMES))
    verdicts = [read_and_validate(p, contract, contract.schema())[1].valid_mask.to_list() for p in (csv, ndjson)]
    assert verdicts[0] == verdicts[1] == _expected()[1]
