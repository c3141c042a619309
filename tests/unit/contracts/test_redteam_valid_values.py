"""``invalidValues`` / ``validValues`` lists run on numbers mixing integers and decimals, and on dates and
timestamps (which YAML hands over as text).

Found by the red-team pass: ``validValues: [0, 0.5, 1]`` on a number property could not run (polars refuses to
build one list from ``0`` and ``0.5``), nor ``validValues: [2024-01-01]`` on a date (``is_in`` of text in a
date column): lint refused these valid contracts, and at run time the error verdict failed every row closed.
Values are now read in the property's type, as bounds are. The independent computation is Python's ``in``
on the same values.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from streams.contracts.loader import parse_contract

CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: urn:test:valid-values
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - name: f
        logicalType: number
        quality: [{type: library, metric: invalidValues, arguments: {validValues: [0, 0.5, 1]}, mustBe: 0}]
      - name: d
        logicalType: date
        quality:
          - {type: library, metric: invalidValues, arguments: {validValues: [2024-01-01, "2024-02-29"]}, mustBe: 0}
      - name: ts
        logicalType: timestamp
        logicalTypeOptions: {timezone: true}
        quality:
          - type: custom
            engine: pandera
            implementation: "Check.notin(['2024-01-01T00:00:00Z'])"
      - name: i
        logicalType: integer
        quality: [{type: library, metric: invalidValues, arguments: {validValues: [1, 2]}, mustBe: 0}]
"""

F = [0.0, 0.5, 1.0, 0.25, None, 2.0]
D = [dt.date(2024, 1, 1), dt.date(2024, 2, 29), dt.date(2024, 3, 1), None, dt.date(2024, 1, 1), dt.date(1970, 1, 1)]
UTC = dt.UTC
TS = [dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC), None] * 2
I_ = [1, 2, 3, None, 1, 0]


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "f": pl.Series(F, dtype=pl.Float64),
            "d": pl.Series(D, dtype=pl.Date),
            "ts": pl.Series(TS, dtype=pl.Datetime("us", "UTC")),
            "i": pl.Series(I_, dtype=pl.Int64),
        }
    )


def _expected() -> dict[str, list[int]]:
    valid_f, valid_d, banned = {0, 0.5, 1}, {dt.date(2024, 1, 1), dt.date(2024, 2, 29)}, {TS[0]}
    return {
        "f": [i for i, v in enumerate(F) if v is not None and v not in valid_f],
        "d": [i for i, v in enumerate(D) if v is not None and v not in valid_d],
        "ts": [i for i, v in enumerate(TS) if v is not None and v in banned],
        "i": [i for i, v in enumerate(I_) if v is not None and v not in {1, 2}],
    }


def test_value_lists_in_the_property_type() -> None:
    c = parse_contract(CONTRACT, path="t.yaml")
    report = c.validate(_frame())
    assert [k.error for k in report.checks] == [None] * len(report.checks)
    got = {
        col: sorted(int(i) for i in report.failure_cases.filter(pl.col("column") == col)["index"].to_list())
        for col in ("f", "d", "ts", "i")
    }
    assert got == _expected() == {"f": [3, 5], "d": [2, 5], "ts": [0, 3], "i": [2, 5]}


def test_pandera_agrees() -> None:
    c = parse_contract(CONTRACT, path="t.yaml")
    with pytest.raises(Exception) as info:
        c.to_pandera().validate(_frame(), lazy=True)
    cases = info.value.failure_cases  # type: ignore[attr-defined]
    assert sorted(cases["index"].to_list()) == sorted(i for v in _expected().values() for i in v)


def test_integer_lists_keep_their_check_label() -> None:
    rules = {r.name: r for r in parse_contract(CONTRACT, path="t.yaml").schema().rules}
    assert rules["i:invalidValues"].check == "isin([1, 2])"
    assert rules["f:invalidValues"].check == "isin([0.0, 0.5, 1.0])"


COMPARISONS = """
apiVersion: v3.1.0
kind: DataContract
id: urn:test:temporal-checks
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - name: d
        logicalType: date
        quality:
          - {type: custom, engine: pandera, implementation: "Check.greater_than('2024-01-01')"}
          - {type: custom, engine: pandera, implementation: "Check.in_range('2024-01-01', '2024-12-31')"}
      - name: ts
        logicalType: timestamp
        logicalTypeOptions: {timezone: true}
        quality:
          - {type: custom, engine: pandera, implementation: "Check.less_than('2025-01-01T00:00:00Z')"}
"""


def test_pandera_comparisons_with_dates_as_text() -> None:
    """``Check.greater_than('2024-01-01')`` on a date: the YAML can only hold text, read as a bound is."""
    c = parse_contract(COMPARISONS, path="t.yaml")
    days = [dt.date(2023, 12, 31), dt.date(2024, 1, 1), dt.date(2024, 6, 1), dt.date(2025, 1, 1)]
    stamps = [dt.datetime(2024, 12, 31, 23, 59, tzinfo=UTC), dt.datetime(2025, 1, 1, tzinfo=UTC)] * 2
    df = pl.DataFrame({"d": days, "ts": pl.Series(stamps, dtype=pl.Datetime("us", "UTC"))})
    report = c.validate(df)
    assert [k.error for k in report.checks] == [None] * len(report.checks)
    failures = {k.name: k.failures for k in report.checks}
    first, last = dt.date(2024, 1, 1), dt.date(2024, 12, 31)
    assert failures["d:greater_than"] == sum(not d > first for d in days) == 2
    assert failures["d:in_range"] == sum(not first <= d <= last for d in days) == 2
    assert failures["ts:less_than"] == sum(not t < dt.datetime(2025, 1, 1, tzinfo=UTC) for t in stamps) == 2
