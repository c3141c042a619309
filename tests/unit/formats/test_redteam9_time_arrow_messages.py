"""Red team 9: Arrow IPC messages, read as Parquet / Arrow files are.

* A ``time32`` / ``time64`` column for a ``logicalType: time`` property was a type mismatch on every row of an
  Arrow message (the decoder turned only timestamps and dates to text), while the same column in a Parquet or
  Arrow file passed: the stream quarantined records a file validates.
* An Arrow message none of whose columns yields a value (no declared column, or every declared one of a wrong
  type) was decoded as ONE row of literals for its n records: the frame was shorter than its ``message`` /
  ``line`` lists, and every later record of the batch was judged against another's row.

The oracle is Python's ``datetime.time`` of the values written, and the records' count.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zoneinfo
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from streams.cli.files import read_and_validate
from streams.contracts.loader import load_contract
from streams.contracts.model import Contract
from streams.formats.decoder import Decoder, MessageDecoder
from streams.validation.engine import compile_plan

CONTRACT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:redteam9:arrow
version: 1.0.0
status: draft
schema:
  - name: t
    properties:
      - name: n
        logicalType: integer
      - name: at
        logicalType: time
"""
TIMES = [dt.time(12, 30, 5, 500000), dt.time(0, 0), dt.time(23, 59, 59, 999999), None]


class _Message:
    def __init__(self, value: bytes, headers: tuple[tuple[str, bytes], ...] = ()) -> None:
        self.value, self.headers = value, headers


def _arrow(table: pa.Table) -> _Message:
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return _Message(sink.getvalue(), (("content-type", b"application/vnd.apache.arrow.stream"),))


@pytest.fixture
def contract(tmp_path: Path) -> Contract:
    path = tmp_path / "c.yaml"
    path.write_text(CONTRACT)
    return load_contract(path)


@pytest.mark.parametrize("arrow_type", [pa.time32("ms"), pa.time64("us"), pa.time64("ns")])
def test_an_arrow_time_column_passes_in_a_message_as_in_a_file(
    contract: Contract, tmp_path: Path, arrow_type: pa.DataType
) -> None:
    at = pa.array(TIMES, pa.time64("us")).cast(arrow_type, safe=False)  # time32[ms] truncates the microseconds
    table = pa.table({"n": [1, 2, 3, 4], "at": at})
    decoded = Decoder(contract.schema()).decode([_arrow(table)])
    assert decoded.mismatches.height == 0
    conformed = compile_plan(contract).conform(decoded.frame)
    expected = [None if t is None else t.replace(microsecond=t.microsecond // 1000 * 1000) for t in TIMES]
    got = conformed.get_column("at").to_list()
    assert got == (expected if arrow_type == pa.time32("ms") else TIMES)
    assert contract.validate(decoded.frame).valid_mask.all()

    pq.write_table(table, tmp_path / "d.parquet")
    frame, report, _ = read_and_validate(tmp_path / "d.parquet", contract, contract.schema())
    assert report.valid_mask.all() and frame.get_column("at").to_list() == got


@pytest.mark.parametrize("decoder", [Decoder, MessageDecoder])
@pytest.mark.parametrize(
    "table",
    [pa.table({"other": [1, 2]}), pa.table({"n": ["a", "b"]}), pa.table({"n": ["a", "b"], "at": [1.5, 2.5]})],
    ids=["no declared column", "a wrong type", "every declared column of a wrong type"],
)
def test_an_arrow_message_without_a_value_keeps_a_row_per_record(
    contract: Contract, decoder: type[MessageDecoder], table: pa.Table
) -> None:
    messages = [_arrow(table), _Message(json.dumps({"n": 7, "at": "10:00"}).encode()), _arrow(table)]
    decoded = decoder(contract.schema()).decode(messages)
    assert decoded.frame.height == len(decoded.message) == len(decoded.line) == 5
    json_row = decoded.message.to_list().index(1)
    assert decoded.frame.row(json_row) == (7, "10:00")
    assert decoded.frame.filter(pl.int_range(pl.len()) != json_row).get_column("n").null_count() == 4


@pytest.mark.parametrize("zone", ["Africa/Monrovia", "Asia/Kolkata", "Europe/Amsterdam", "Asia/Tokyo"])
@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_a_zoned_arrow_timestamp_keeps_its_instant_in_a_message(tmp_path: Path, zone: str, unit: str) -> None:
    """An Arrow message's zoned timestamp was turned to text with `%:z`, which drops an offset's seconds: a 1960
    instant in Monrovia (-00:44:30) was read 30 s off, one of 1930 in Amsterdam (+00:19:32) 32 s off."""
    path = tmp_path / "c.yaml"
    ns = "logicalType: timestamp\n        physicalType: timestamp(ns)\n"
    path.write_text(CONTRACT.replace("logicalType: time\n", ns))
    contract = load_contract(path)
    instants = [dt.datetime(1960, 6, 1, 12, 0, 1, 250000, tzinfo=dt.UTC), dt.datetime(1930, 1, 1, tzinfo=dt.UTC),
                dt.datetime(1890, 1, 1, 23, 59, 59, tzinfo=dt.UTC), dt.datetime(2024, 6, 1, tzinfo=dt.UTC)]  # fmt: skip
    local = pa.array([t.astimezone(zoneinfo.ZoneInfo(zone)) for t in instants], pa.timestamp("us", zone))
    table = pa.table({"n": [1, 2, 3, 4], "at": local.cast(pa.timestamp(unit, zone), safe=False)})
    decoded = Decoder(contract.schema()).decode([_arrow(table)])
    got = compile_plan(contract).conform(decoded.frame).get_column("at").to_list()
    # the instant the Arrow value holds (epoch units, UTC), to the property's microsecond-exact Python reading
    nanos = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit]
    epochs = table["at"].cast(pa.int64()).to_pylist()
    held = [dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=n * nanos // 1000) for n in epochs]
    assert got == held
    assert [t.replace(tzinfo=None) for t in instants[1:]] == held[1:]  # whole seconds in every unit

    pq.write_table(table, tmp_path / "d.parquet")
    frame, _, _ = read_and_validate(tmp_path / "d.parquet", contract, contract.schema())
    assert compile_plan(contract).conform(frame).get_column("at").to_list() == got
