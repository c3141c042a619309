"""Red team 9: bounds on ``timestamp(ns)`` and ``timestamp(3)`` properties judge the instant the record holds.

polars compares a ``Datetime`` column with a datetime literal (microseconds) in the coarser of the two units and
truncates the finer side. A ``timestamp(ns)`` value 400 ns past ``maximum`` passed it (and ``ts == '...'`` held
for it); a ``timestamp(3)`` value (whole milliseconds) passed a ``minimum`` 500 us past it. And a bound written
finer than a microsecond (``.000000500``) was truncated by Python's datetime without a word: it is now refused
at load (``file:line``). The independent computation is integer arithmetic on epoch nanoseconds.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from streams.contracts.loader import load_contract
from streams.errors import ContractSchemaError

BOUND = "2024-01-01T00:00:00.000500Z"
BOUND_NS = 1_704_067_200_000_500_000
OFFSETS_NS = [-1_000_000, -1_000, -400, -1, 0, 1, 400, 999, 1_000, 1_000_000]
UNIT_NS = {"3": 1_000_000, "6": 1_000, "ns": 1}
OPTIONS = {
    "minimum": lambda v: v >= BOUND_NS,
    "maximum": lambda v: v <= BOUND_NS,
    "exclusiveMinimum": lambda v: v > BOUND_NS,
    "exclusiveMaximum": lambda v: v < BOUND_NS,
}
EXPRESSIONS = {
    f"ts <= '{BOUND}'": lambda v: v <= BOUND_NS,
    f"ts == '{BOUND}'": lambda v: v == BOUND_NS,
    f"'{BOUND}' < ts": lambda v: v > BOUND_NS,
    f"ts != '{BOUND}'": lambda v: v != BOUND_NS,
}


def _contract(tmp_path: Path, unit: str, zone: str | None, option: str = "", rule: str = "") -> Path:
    options = [f"timezone: true, defaultTimezone: {zone}"] if zone else []
    options += [f"{option}: '{BOUND}'"] if option else []
    text = (
        "apiVersion: v3.1.0\nkind: DataContract\nid: urn:redteam9:bounds\nversion: 1.0.0\nstatus: draft\n"
        "schema:\n  - name: t\n    properties:\n      - name: ts\n        logicalType: timestamp\n"
        f"        physicalType: timestamp({unit})\n        logicalTypeOptions: {{{', '.join(options)}}}\n"
    )
    if rule:
        text += f'    quality:\n      - type: custom\n        engine: expression\n        implementation: "{rule}"\n'
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def _texts() -> tuple[list[str], list[int]]:
    """ISO text to the nanosecond around the bound, and each one's epoch nanoseconds."""
    values = [BOUND_NS + off for off in OFFSETS_NS]
    base = dt.datetime(1970, 1, 1)
    texts = []
    for v in values:
        seconds, nanos = divmod(v, 10**9)
        texts.append(f"{(base + dt.timedelta(seconds=seconds)).isoformat()}.{nanos:09d}Z")
    return texts, values


def _stored(values: list[int], unit: str) -> list[int]:
    """The instant a property of ``unit`` holds: the text truncated to its unit (all values are after 1970)."""
    return [v // UNIT_NS[unit] * UNIT_NS[unit] for v in values]


@pytest.mark.parametrize("zone", [None, "Europe/Paris"])
@pytest.mark.parametrize("unit", ["3", "6", "ns"])
@pytest.mark.parametrize("option", list(OPTIONS))
def test_a_bound_judges_the_instant_to_the_unit(tmp_path: Path, unit: str, zone: str | None, option: str) -> None:
    contract = load_contract(_contract(tmp_path, unit, zone, option=option))
    texts, values = _texts()
    report = contract.validate(pl.DataFrame({"ts": texts}))
    assert report.valid_mask.to_list() == [OPTIONS[option](v) for v in _stored(values, unit)]


@pytest.mark.parametrize("unit", ["3", "ns"])
@pytest.mark.parametrize("rule", list(EXPRESSIONS))
def test_an_expression_compares_the_instant_to_the_unit(tmp_path: Path, unit: str, rule: str) -> None:
    contract = load_contract(_contract(tmp_path, unit, "UTC", rule=rule))
    texts, values = _texts()
    report = contract.validate(pl.DataFrame({"ts": texts}))
    assert report.valid_mask.to_list() == [EXPRESSIONS[rule](v) for v in _stored(values, unit)]


def test_a_bound_beyond_the_nanosecond_range_still_runs(tmp_path: Path) -> None:
    path = _contract(tmp_path, "ns", None)
    path.write_text(path.read_text().replace("{}", "{maximum: '9999-12-31T23:59:59', minimum: '0001-01-01'}"))
    report = load_contract(path).validate(pl.DataFrame({"ts": ["2262-04-11T23:47:16.854775807", "1677-09-22"]}))
    assert report.valid_mask.to_list() == [True, True]


@pytest.mark.parametrize("where", ["option", "rule"])
def test_a_bound_finer_than_a_microsecond_is_refused_at_its_line(tmp_path: Path, where: str) -> None:
    finer = "2024-01-01T00:00:00.000000500Z"
    if where == "option":
        path = _contract(tmp_path, "ns", None, option="maximum")
        path.write_text(path.read_text().replace(BOUND, finer))
    else:
        path = _contract(tmp_path, "ns", None, rule=f"ts <= '{finer}'")
    with pytest.raises(ContractSchemaError, match=r"c\.yaml:\d+: .*finer than a microsecond"):
        load_contract(path)
