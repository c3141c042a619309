"""Red team 9: a naive bound in a DST gap or fold of its property's zone is a ``file:line`` error.

A naive bound is read in the property's zone, as naive values in the data are, and naive data in a gap or fold
names no single instant (a ``dtype`` failure). A bound there loaded without a word: in a gap
(``minimum: '2026-03-29T02:30:00'`` in Paris) polars refused the comparison at run time and the error verdict
failed every row closed; in a fold Python's first reading was taken silently. The oracle is ``zoneinfo``.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import polars as pl
import pytest

from streams.contracts.loader import load_contract
from streams.errors import ContractSchemaError


def _contract(tmp_path: Path, zone: str, option: str = "", rule: str = "") -> Path:
    path = tmp_path / "c.yaml"
    text = (
        "apiVersion: v3.1.0\nkind: DataContract\nid: urn:redteam9:dst\nversion: 1.0.0\nstatus: draft\n"
        "schema:\n  - name: t\n    properties:\n      - name: ts\n        logicalType: timestamp\n"
        f"        logicalTypeOptions: {{timezone: true, defaultTimezone: {zone}{option}}}\n"
    )
    if rule:
        text += f'    quality:\n      - type: custom\n        engine: expression\n        implementation: "{rule}"\n'
    path.write_text(text)
    return path


def _kind(local: dt.datetime, zone: str) -> str:
    tz = zoneinfo.ZoneInfo(zone)
    early, late = local.replace(tzinfo=tz), local.replace(tzinfo=tz, fold=1)
    if early.utcoffset() == late.utcoffset():
        return "one"
    return "fold" if early.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) == local else "gap"


CASES = [
    ("Europe/Paris", "2026-03-29T02:30:00"),
    ("Europe/Paris", "2026-10-25T02:30:00"),
    ("Europe/Paris", "2026-10-25T03:00:00"),
    ("America/New_York", "2026-03-08T02:00:00"),
    ("America/New_York", "2026-11-01T01:59:59"),
    ("Australia/Lord_Howe", "2026-10-04T02:15:00"),
    ("Australia/Lord_Howe", "2026-04-05T01:45:00"),
    ("Australia/Lord_Howe", "2026-04-05T02:00:00"),
]


@pytest.mark.parametrize(("zone", "local"), CASES)
@pytest.mark.parametrize("where", ["minimum", "maximum", "rule"])
def test_a_naive_bound_without_one_instant_is_refused_at_its_line(
    tmp_path: Path, zone: str, local: str, where: str
) -> None:
    if where == "rule":
        path = _contract(tmp_path, zone, rule=f"ts >= '{local}'")
    else:
        path = _contract(tmp_path, zone, option=f", {where}: '{local}'")
    kind = _kind(dt.datetime.fromisoformat(local), zone)
    if kind == "one":
        contract = load_contract(path)
        bound = dt.datetime.fromisoformat(local).replace(tzinfo=zoneinfo.ZoneInfo(zone)).astimezone(dt.UTC)
        around = [bound - dt.timedelta(microseconds=1), bound, bound + dt.timedelta(microseconds=1)]
        texts = [t.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for t in around]
        report = contract.validate(pl.DataFrame({"ts": texts}))
        expected = {"minimum": [False, True, True], "maximum": [True, True, False], "rule": [False, True, True]}
        assert report.valid_mask.to_list() == expected[where]
    else:
        words = "does not exist" if kind == "gap" else "is ambiguous"
        with pytest.raises(ContractSchemaError, match=rf"c\.yaml:\d+: .*{words} in {zone}.*offset"):
            load_contract(path)


def test_the_cases_hold_gaps_folds_and_plain_times() -> None:
    kinds = {_kind(dt.datetime.fromisoformat(local), zone) for zone, local in CASES}
    assert kinds == {"one", "gap", "fold"}
