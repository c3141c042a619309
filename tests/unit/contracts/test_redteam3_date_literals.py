"""Date, time and timestamp literals in ``engine: expression`` rules are read in the property's type.

Found by the earlier red-team passes (left over): ``d > '2024-01-01'`` on a date property was a lint error
(polars refuses to compare a date with text, and YAML and expressions have no date literal), while
``Check.greater_than('2024-01-01')`` on the same property ran. Decision: the text compared with a bare
date, time or timestamp column is read as ``logicalTypeOptions`` bounds are (ISO-8601; a timestamp in the
column's zone, a naive one read there); text that is no ISO value is a ``file:line`` error. Unambiguous: a
comparison of a temporal column with text has no other meaning in polars (it raises). The independent
computation is Python's comparison of ``datetime`` values.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from streams.contracts.loader import parse_contract
from streams.errors import ContractError
from streams.validation.pandera import from_pandera

CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: urn:test:date-literals
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - {name: d, logicalType: date}
      - {name: ts, logicalType: timestamp, logicalTypeOptions: {timezone: true, defaultTimezone: Europe/Paris}}
      - {name: tm, logicalType: time}
      - {name: n, logicalType: integer}
    quality:
      - {type: custom, engine: expression, implementation: "d > '2024-01-01'"}
      - {type: custom, engine: expression, implementation: "'2024-01-01' <= d < '2024-12-31' or is_null(d)"}
      - {type: custom, engine: expression, implementation: "ts < '2024-06-01T00:00:00Z'"}
      - {type: custom, engine: expression, implementation: "ts >= '2024-01-01'"}
      - {type: custom, engine: expression, implementation: "tm in ['08:00:00', '09:30:00']"}
      - {type: custom, engine: expression, implementation: "n > 0 and d != '2024-03-01'"}
"""

PARIS = ZoneInfo("Europe/Paris")
D = [dt.date(2023, 12, 31), dt.date(2024, 1, 1), dt.date(2024, 3, 1), dt.date(2024, 7, 1), None, dt.date(2025, 1, 1)]
TS = [
    dt.datetime(2023, 12, 31, 23, 30, tzinfo=dt.UTC),  # 00:30 in Paris: after a naive '2024-01-01' read there
    dt.datetime(2023, 12, 31, 22, 30, tzinfo=dt.UTC),  # 23:30 in Paris: before it
    dt.datetime(2024, 5, 31, 21, 59, tzinfo=dt.UTC),
    dt.datetime(2024, 6, 1, 0, 0, tzinfo=dt.UTC),
    None,
    dt.datetime(2024, 6, 1, 1, 0, tzinfo=dt.UTC),
]
TM = [dt.time(8), dt.time(9, 30), dt.time(9, 31), None, dt.time(8), dt.time(0)]
N = [1, 2, 3, 4, 0, 6]


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "d": pl.Series(D, dtype=pl.Date),
            "ts": pl.Series(TS, dtype=pl.Datetime("us", "UTC")).dt.convert_time_zone("Europe/Paris"),
            "tm": pl.Series(TM, dtype=pl.Time),
            "n": pl.Series(N, dtype=pl.Int64),
        }
    )


def _expected() -> list[set[int]]:
    first, last = dt.date(2024, 1, 1), dt.date(2024, 12, 31)
    june, new_year = dt.datetime(2024, 6, 1, tzinfo=dt.UTC), dt.datetime(2024, 1, 1, tzinfo=PARIS)
    rows = range(len(D))
    return [
        {i for i in rows if D[i] is not None and not D[i] > first},  # type: ignore[operator]
        {i for i in rows if D[i] is not None and not first <= D[i] < last},  # type: ignore[operator]
        {i for i in rows if TS[i] is not None and not TS[i] < june},  # type: ignore[operator]
        {i for i in rows if TS[i] is not None and not TS[i] >= new_year},  # type: ignore[operator]
        {i for i in rows if TM[i] is not None and TM[i] not in (dt.time(8), dt.time(9, 30))},
        # three-valued: False and null is False (fails), True and null is null (passes, as pandera's ignore_na)
        {i for i in rows if not N[i] > 0 or (D[i] is not None and D[i] == dt.date(2024, 3, 1))},
    ]


def test_expressions_compare_dates_with_iso_text() -> None:
    c = parse_contract(CONTRACT, path="t.yaml")
    report = c.validate(_frame())
    assert [k.error for k in report.checks] == [None] * len(report.checks)
    got = [
        {int(i) for i in report.failure_cases.filter(pl.col("check") == k.check)["index"].to_list()}
        for k in report.checks
        if k.name.startswith("t:expression")
    ]
    assert got == _expected() == [{0, 1}, {0, 5}, {3, 5}, {1}, {2, 5}, {2, 4}]


def test_pandera_agrees_and_the_schema_round_trips() -> None:
    c = parse_contract(CONTRACT, path="t.yaml")
    report = c.validate(_frame())
    with pytest.raises(Exception) as info:
        c.to_pandera().validate(_frame(), lazy=True)
    cases = info.value.failure_cases  # type: ignore[attr-defined]
    key = ["check", "index"]
    assert sorted(cases.select(key).rows()) == sorted(report.failure_cases.select(key).rows())
    labels = {r.check for r in c.schema().rules}
    assert "expression((d > '2024-01-01'))" in labels
    assert "expression((tm in ['08:00:00', '09:30:00']))" in labels
    back = from_pandera(c.to_pandera(), contract_id="x", version="1").schema()
    ours = sorted(r.args for r in c.schema().rules if r.op.value == "expression")
    assert sorted(r.args for r in back.rules if r.op.value == "expression") == ours


@pytest.mark.parametrize("literal", ["'yesterday'", "'2024-13-01'"])
def test_text_that_is_no_date_is_a_located_error(literal: str) -> None:
    bad = CONTRACT.replace("d > '2024-01-01'", f"d > {literal}")
    with pytest.raises(ContractError, match=r"t\.yaml:15: .*not an ISO-8601 date"):
        parse_contract(bad, path="t.yaml")
