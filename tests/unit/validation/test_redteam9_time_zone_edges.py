"""Red team 9: naive text timestamps read in a property's zone (``defaultTimezone``) at its edges.

* A local time in a DST gap (``2026-03-29T02:30`` in Paris) or fold (``2026-10-25T02:30``) names no single
  instant, and the engine reads it as null (a ``dtype`` failure). In a batch Arrow parsed whole, the null kept a
  clean mismatch mask: the record passed, its timestamp lost; next to a bad value it failed.
* A local time whose instant leaves the nanosecond range (``2262-04-11T23:00`` in New York is 2262-04-12 UTC)
  wrapped to 1677 in a batch Arrow parsed, and failed in another.
* A ``timestamp[us]`` column of a Parquet / Arrow file with one value beyond the nanosecond range (2400-01-01),
  for a ``timestamp(ns)`` property: polars' cast raised for the whole column and every row failed ``dtype``.

The oracle is ``zoneinfo``: a local time is valid when it round-trips through UTC and both folds agree.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import polars as pl
import pytest

from streams.cli.files import read_and_validate
from streams.contracts.loader import load_contract
from streams.contracts.model import Contract
from streams.validation.engine import compile_plan

ZONES = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe"]
# the batch a value arrives in: Arrow parses it whole, or polars' layout of a first value of another shape (a bad
# one, a space and no seconds) parses it and the rows it misses are retried
BATCHES = {
    "alone": ([], []),
    "among valid": (["2026-01-01T00:00:00"], ["2026-06-01T12:00:00"]),
    "after a bad value": (["not a time"], []),
    "after another layout": (["2026-01-01 00:00"], []),
}


def _contract(tmp_path: Path, zone: str, unit: str = "us") -> Contract:
    path = tmp_path / "c.yaml"
    path.write_text(
        "apiVersion: v3.1.0\nkind: DataContract\nid: urn:redteam9:zones\nversion: 1.0.0\nstatus: draft\n"
        "schema:\n  - name: t\n    properties:\n      - name: ts\n        logicalType: timestamp\n"
        f"        physicalType: timestamp({unit})\n"
        f"        logicalTypeOptions: {{timezone: true, defaultTimezone: {zone}}}\n"
    )
    return load_contract(path)


def _instant(local: dt.datetime, zone: str) -> dt.datetime | None:
    """The UTC instant of a naive local time in ``zone``; None in a gap or a fold (zoneinfo)."""
    tz = zoneinfo.ZoneInfo(zone)
    early, late = local.replace(tzinfo=tz), local.replace(tzinfo=tz, fold=1)
    if early.utcoffset() != late.utcoffset():
        return None
    utc = early.astimezone(dt.UTC)
    return utc if utc.astimezone(tz).replace(tzinfo=None) == local else None


def _local_times(zone: str) -> list[dt.datetime]:
    """Every quarter hour of the days in 2026 on which ``zone`` changes its offset, and noon of two others."""
    tz = zoneinfo.ZoneInfo(zone)
    days = [
        day
        for n in range(365)
        if (day := dt.datetime(2026, 1, 1) + dt.timedelta(days=n)).replace(tzinfo=tz).utcoffset()
        != (day + dt.timedelta(days=1)).replace(tzinfo=tz).utcoffset()
    ]
    assert len(days) == 2, (zone, days)
    steps = [day + dt.timedelta(minutes=15 * k) for day in days for k in range(4 * 24)]
    return [*steps, dt.datetime(2026, 2, 1, 12), dt.datetime(2026, 7, 1, 12)]


@pytest.mark.parametrize("batch", list(BATCHES))
@pytest.mark.parametrize("zone", ZONES)
def test_local_times_in_gaps_and_folds_fail_in_every_batch(tmp_path: Path, zone: str, batch: str) -> None:
    contract = _contract(tmp_path, zone)
    local = _local_times(zone)
    expected = [_instant(t, zone) for t in local]
    assert 0 < expected.count(None) < len(local)  # the days hold a gap and a fold
    before, after = BATCHES[batch]
    texts = [*before, *(t.isoformat() for t in local), *after]
    rows = slice(len(before), len(before) + len(local))

    report = contract.validate(pl.DataFrame({"ts": texts}))
    assert report.valid_mask.to_list()[rows] == [e is not None for e in expected]
    got = compile_plan(contract).conform(pl.DataFrame({"ts": texts})).get_column("ts")[rows]
    assert [None if v is None else v.astimezone(dt.UTC) for v in got] == expected


@pytest.mark.parametrize("batch", list(BATCHES))
@pytest.mark.parametrize(
    ("zone", "text", "valid"),
    [
        ("America/New_York", "2262-04-11T23:00:00", False),  # 2262-04-12T04:00Z: past the ns range
        ("America/Bogota", "2262-04-11T19:00:00", False),  # 2262-04-12T00:00Z (no DST: polars' zone data and
        ("America/Bogota", "2262-04-11T18:00:00", True),  # zoneinfo agree; polars applies no DST after 2099)
        ("Asia/Tokyo", "1677-09-21T01:00:00", False),  # 1677-09-20T16:00Z: before it
        ("Asia/Tokyo", "1677-09-22T09:00:00", True),
        ("Asia/Tokyo", "1677-09-21T01:00:00Z", True),
    ],
)
def test_a_local_time_leaving_the_nanosecond_range_fails_in_every_batch(
    tmp_path: Path, zone: str, text: str, valid: bool, batch: str
) -> None:
    contract = _contract(tmp_path, zone, "ns")
    before, after = BATCHES[batch]
    texts = [*before, text, *after]
    report = contract.validate(pl.DataFrame({"ts": texts}))
    assert report.valid_mask[len(before)] is valid
    value = compile_plan(contract).conform(pl.DataFrame({"ts": texts})).get_column("ts")[len(before)]
    utc = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    utc = utc if utc.tzinfo else utc.replace(tzinfo=zoneinfo.ZoneInfo(zone))
    assert value == (utc if valid else None)


@pytest.mark.parametrize("suffix", ["parquet", "arrow"])
@pytest.mark.parametrize("zone", [None, "UTC", "Europe/Paris"])
def test_a_microsecond_column_beyond_the_nanosecond_range_fails_only_its_row(
    tmp_path: Path, suffix: str, zone: str | None
) -> None:
    contract = _contract(tmp_path, zone or "UTC", "ns")
    values = [dt.datetime(2400, 1, 1), dt.datetime(2020, 1, 1, 12), dt.datetime(1500, 1, 1), dt.datetime(2262, 4, 11)]
    frame = pl.DataFrame({"ts": pl.Series(values, dtype=pl.Datetime("us", zone))})
    path = tmp_path / f"d.{suffix}"
    frame.write_parquet(path) if suffix == "parquet" else frame.write_ipc(path)
    _, report, _ = read_and_validate(path, contract, contract.schema())
    assert report.valid_mask.to_list() == [False, True, False, True]
    assert report.failure_cases.get_column("index").to_list() == [0, 2]
