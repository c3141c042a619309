"""Value lists (``x in [...]``, ``validValues``, ``Check.isin``) are read in their property's type.

polars' ``is_in`` refuses a list of another numeric type: ``hour in [1.5, 100]`` over an Int8 ``hour``
raised ``'is_in' cannot check for Int8 values in List(Float64) data`` on every batch, and so did
``validValues: [1, 2]`` on a number property; the rule errored at run time (every row failed closed).
pandera's own ``Check.isin`` raises alike (below). A list whose values are all values of the type is now
judged (integral numbers as integers, integers as floats on a number), and the compiled pandera schema
judges the same rows; a value no value of the property can equal (``1.5`` on an integer, text on a
number, a number on text) is a ``file:line`` error at load.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
import pytest

from streams.contracts.loader import parse_contract
from streams.errors import ContractError

HEAD = """
apiVersion: v3.1.0
kind: DataContract
id: urn:test:lists
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - {name: hour, logicalType: integer, physicalType: int8}
      - {name: x, logicalType: number}
      - {name: s, logicalType: string}
"""
JUDGED = (
    HEAD
    + """\
    quality:
      - {name: hours, type: custom, engine: expression, implementation: "hour in [1, 100.0]"}
      - {name: xs, type: custom, engine: expression, implementation: "x not in [2]"}
"""
)


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "hour": pl.Series([1, 100, 5, None], dtype=pl.Int8),
            "x": [1.0, 2.0, 2.5, None],
            "s": ["a", "b", "c", None],
        }
    )


def test_pandera_itself_cannot_evaluate_a_list_of_another_numeric_type() -> None:
    schema = pa.DataFrameSchema({"hour": pa.Column(pl.Int8, pa.Check.isin([1.5, 100]))})
    with pytest.raises(pa.errors.SchemaErrors, match="cannot check for Int8 values in List"):
        schema.validate(_frame().select("hour"), lazy=True)


def test_lists_of_the_property_type_are_judged_as_pandera_judges_them() -> None:
    c = parse_contract(JUDGED, path="t.yaml")
    report = c.validate(_frame())
    assert [k.error for k in report.checks] == [None] * len(report.checks)
    got = {k.name: sorted(int(i) for i in report.cases_of(k.name, 100)["index"].to_list()) for k in report.checks}
    assert {n: got[n] for n in ("hours", "xs")} == {"hours": [2], "xs": [1]}
    with pytest.raises(pa.errors.SchemaErrors) as info:
        c.to_pandera().validate(_frame(), lazy=True)
    key = ["index", "failure_case"]
    assert sorted(info.value.failure_cases.select(key).rows()) == sorted(report.failure_cases.select(key).rows())


def test_valid_values_of_integers_on_a_number_property_are_judged() -> None:
    valid = "{metric: invalidValues, arguments: {validValues: [1, 2]}, mustBe: 0}"
    text = HEAD.replace("{name: x, logicalType: number}", f"{{name: x, logicalType: number, quality: [{valid}]}}")
    report = parse_contract(text, path="t.yaml").validate(_frame())
    (check,) = [k for k in report.checks if k.name == "x:invalidValues"]
    assert check.error is None
    assert report.cases_of(check.name, 100)["index"].to_list() == [2]


@pytest.mark.parametrize(
    ("rule", "line", "message"),
    [
        ('{name: h, type: custom, engine: expression, implementation: "hour in [1.5, 100]"}', 14, "1.5 is no integer"),
        ("{name: h, type: custom, engine: expression, implementation: \"x in [1, '2']\"}", 14, "'2' is not a number"),
        ('{name: h, type: custom, engine: expression, implementation: "s not in [1]"}', 14, "1 is not text"),
        ('{name: h, type: custom, engine: expression, implementation: "hour in [True]"}', 14, "True is not an integer"),
    ],
)
def test_a_value_no_value_of_the_property_can_equal_is_a_load_error(rule: str, line: int, message: str) -> None:
    with pytest.raises(ContractError, match=rf"t\.yaml:{line}: .*{message}"):
        parse_contract(HEAD + f"    quality:\n      - {rule}\n", path="t.yaml")


@pytest.mark.parametrize(
    "quality",
    [
        "{metric: invalidValues, arguments: {validValues: [1.5, 100]}, mustBe: 0}",
        '{type: custom, engine: pandera, implementation: "Check.isin([1.5, 100])"}',
    ],
)
def test_a_property_value_list_with_a_non_integer_is_a_load_error(quality: str) -> None:
    text = HEAD.replace(
        "{name: hour, logicalType: integer, physicalType: int8}",
        f"{{name: hour, logicalType: integer, physicalType: int8, quality: [{quality}]}}",
    )
    with pytest.raises(ContractError, match=r"t\.yaml:10: hour is an integer property and 1\.5 is no integer"):
        parse_contract(text, path="t.yaml")
