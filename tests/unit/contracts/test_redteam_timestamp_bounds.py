"""Bounds on a timestamp in a time zone other than UTC (``defaultTimezone``) run, in that zone.

Found by the red-team pass: every bound was made a UTC datetime, and polars refuses to compare a
``Datetime(tz='Europe/Paris')`` column with a UTC literal: the rule could not run, so lint refused a valid
contract and, at run time, the error verdict failed every row closed (all quarantined). A naive bound is read
in the property's zone, as naive values in the data are. The independent computation is Python's own
comparison of aware datetimes.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from streams.contracts.loader import parse_contract

PARIS = ZoneInfo("Europe/Paris")


def _contract(unit: str, options: str) -> str:
    return f"""
apiVersion: v3.1.0
kind: DataContract
id: urn:test:tz-bounds
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - name: ts
        logicalType: timestamp
        physicalType: timestamp({unit})
        logicalTypeOptions: {{timezone: true, defaultTimezone: Europe/Paris, {options}}}
      - name: y
        logicalType: string
"""


@pytest.mark.parametrize("unit", ["3", "6", "9"])
def test_bounds_in_the_property_time_zone(unit: str) -> None:
    c = parse_contract(
        _contract(unit, 'minimum: "2024-06-01T00:00:00", exclusiveMaximum: "2024-06-02T00:00:00Z"'), path="t.yaml"
    )
    low = datetime(2024, 6, 1, 0, 0, tzinfo=PARIS)  # naive bound: Paris time, as naive data is read
    high = datetime(2024, 6, 2, 0, 0, tzinfo=ZoneInfo("UTC"))
    values = [
        datetime(2024, 5, 31, 23, 30, tzinfo=PARIS),
        datetime(2024, 6, 1, 0, 0, tzinfo=PARIS),
        datetime(2024, 5, 31, 22, 30, tzinfo=ZoneInfo("UTC")),  # 00:30 in Paris
        datetime(2024, 6, 2, 1, 59, tzinfo=PARIS),  # 23:59 UTC
        datetime(2024, 6, 2, 2, 0, tzinfo=PARIS),  # the exclusive maximum itself
    ]
    tu = {"3": "ms", "6": "us", "9": "ns"}[unit]
    ts = pl.Series(values).dt.convert_time_zone("Europe/Paris").cast(pl.Datetime(tu, "Europe/Paris"))  # type: ignore[arg-type]
    df = pl.DataFrame({"ts": ts, "y": ["a"] * len(values)})
    report = c.validate(df)
    assert all(k.error is None for k in report.checks), [k.error for k in report.checks]
    expected = [not (low <= v < high) for v in values]
    assert [not ok for ok in report.valid_mask.to_list()] == expected == [True, False, False, False, True]
    pandera = c.to_pandera()
    with pytest.raises(Exception) as info:
        pandera.validate(df, lazy=True)
    assert sorted(info.value.failure_cases["index"].to_list()) == [0, 4]  # type: ignore[attr-defined]


def test_naive_text_in_the_data_and_a_naive_bound_read_alike() -> None:
    c = parse_contract(_contract("6", 'minimum: "2024-06-01T00:00:00"'), path="t.yaml")
    df = pl.DataFrame({"ts": ["2024-06-01T01:00:00", "2024-05-31T23:59:59"], "y": ["a", "a"]})
    assert c.validate(df).valid_mask.to_list() == [True, False]
