"""Text timestamps of a ``timestamp(ns)`` property outside the nanosecond range (1677-09-21 to 2262-04-11) fail
``dtype`` on their row. polars' ``str.to_datetime(time_unit="ns")`` wraps them instead of giving null
(``2400-01-01`` read ``1815-06-13``): the record passed with another instant (found by red team 9)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from streams.contracts.loader import load_contract
from streams.contracts.model import Contract
from streams.validation.conform import to_datetime

CONTRACT = """\
apiVersion: v3.1.0
kind: DataContract
id: ns-times
version: 1.0.0
status: draft
schema:
  - name: readings
    properties:
      - name: ts
        logicalType: timestamp
        physicalType: timestamp(ns)
"""


@pytest.fixture
def contract(tmp_path: Path) -> Contract:
    path = tmp_path / "c.yaml"
    path.write_text(CONTRACT)
    return load_contract(path)


@pytest.mark.parametrize(
    "texts",
    [
        ["2400-01-01T00:00:00Z", "2020-01-01T00:00:00Z"],  # Arrow refuses the batch: polars' layouts read it
        ["2400-01-01 00:00", "2020-01-01 00:00"],  # a space and no seconds: polars only
        ["1500-01-01T00:00:00Z", "2020-01-01T00:00:00Z"],
        ["9999-12-31", "2020-01-01"],
    ],
)
def test_a_text_timestamp_beyond_the_nanosecond_range_fails_its_type(contract: Contract, texts: list[str]) -> None:
    report = contract.validate(pl.DataFrame({"ts": texts}))
    check = next(c for c in report.checks if c.name == "ts:dtype")
    assert check.failures == 1
    assert report.valid_mask.to_list() == [False, True]


def test_a_nanosecond_text_timestamp_in_range_keeps_every_digit(contract: Contract) -> None:
    texts = ["2262-04-11T23:47:16.854775807Z", "1677-09-21T00:12:43.145224192Z", "2020-01-01 00:00:00.123456789"]
    frame = pl.DataFrame({"ts": texts})
    report = contract.validate(frame)
    assert report.passed and report.valid_mask.all()

    dst = pl.Datetime("ns")
    got = frame.select(to_datetime(pl.col("ts"), pl.String(), dst)).to_series()
    assert got.cast(pl.Int64).to_list() == [2**63 - 1, -(2**63), 1_577_836_800_123_456_789]
