"""The fused validation engine and its report (no broker needed).

Agreement with pandera, and the pandera backend, are tested in ``test_differential.py``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandera.polars as pa
import polars as pl
import pytest

from streams.contracts.expressions import parse_expression
from streams.contracts.model import (
    Classification,
    Contract,
    Field,
    Op,
    Rule,
    SchemaObject,
    Severity,
    Threshold,
    Unit,
    check_label,
)
from streams.validation import CompiledPlan, ValidationReport, compile_plan

ROOT = Path(__file__).resolve().parents[3]
UTC = dt.UTC


def rule(name: str, op: Op, args: tuple[Any, ...] = (), column: str | None = None, **kw: Any) -> Rule:
    dtype = kw.pop("dtype", None)
    return Rule(name=name, op=op, args=args, check=check_label(op, args, dtype), column=column, **kw)


def typed(*fields: Field) -> list[Rule]:
    """The dtype (and required/unique) rules the loader derives from fields."""
    out = []
    for f in fields:
        out.append(rule(f"{f.name}:dtype", Op.DTYPE, (), f.name, dtype=f.dtype))
        if f.required:
            out.append(rule(f"{f.name}:required", Op.NOT_NULL, (), f.name))
        if f.unique:
            out.append(rule(f"{f.name}:unique", Op.UNIQUE, (), f.name))
    return out


def plan_for(
    fields: list[Field], rules: list[Rule] | None = None, name: str = "orders", on_rule_error: str = "quarantine"
) -> CompiledPlan:
    so = SchemaObject(name=name, topic=f"{name}.v1", fields=tuple(fields), rules=(*typed(*fields), *(rules or [])))
    contract = Contract(id="urn:test", version="1.0.0", status="active", sha256="f" * 64, schemas=(so,))
    return compile_plan(contract, on_rule_error=on_rule_error)


def cases(report: ValidationReport, rule_name: str | None = None) -> list[dict[str, Any]]:
    fc = report.failure_cases
    if rule_name is not None:
        fc = fc.filter(pl.col("rule") == rule_name)
    return fc.sort("index", nulls_last=True).to_dicts()


ORDER_FIELDS = [
    Field("id", "integer", pl.Int64(), required=True, unique=True),
    Field("amount", "number", pl.Float64()),
    Field("email", "string", pl.String(), classification=Classification.PII),
    Field("ts", "timestamp", pl.Datetime("us", "UTC")),
]


def orders(**overrides: Any) -> pl.DataFrame:
    data: dict[str, Any] = {
        "id": [1, 2, 3],
        "amount": [10.0, 20.0, 30.0],
        "email": ["a@x.io", "b@x.io", "c@x.io"],
        "ts": [dt.datetime(2024, 1, 1, h, tzinfo=UTC) for h in range(3)],
    }
    data.update(overrides)
    return pl.DataFrame(data, schema_overrides={"ts": pl.Datetime("us", "UTC")})


# --- clean batches and the report shape ------------------------------------------------------


def test_clean_batch_passes_with_empty_report() -> None:
    plan = plan_for(ORDER_FIELDS, [rule("amount:ge", Op.GE, (0,), "amount")])
    r = plan.validate(orders())
    assert r.passed and r.rows == r.valid_rows == 3 and r.invalid_rows == 0
    assert r.failure_cases.height == 0 and r.failed_checks() == ()
    assert r.valid_mask.to_list() == [True] * 3 and r.valid_mask.dtype == pl.Boolean()
    assert r.violations.to_list() == [[], [], []] and r.violations.dtype == pl.List(pl.String())
    assert r.failure_cases.schema == pl.Schema(
        {
            "failure_case": pl.String(),
            "schema_context": pl.String(),
            "column": pl.String(),
            "check": pl.String(),
            "check_number": pl.Int32(),
            "index": pl.Int32(),
            "rule": pl.String(),
        }
    )
    assert r.elapsed_seconds > 0 and (r.missing_columns, r.extra_columns) == ((), ())


def test_to_dict_is_the_documented_json() -> None:
    plan = plan_for(ORDER_FIELDS, [rule("amount:ge", Op.GE, (0,), "amount", dimension="validity")])
    r = plan.validate(orders(amount=[-1.0, -2.0, 3.0]))
    doc = r.to_dict(max_cases=1)
    assert list(doc) == [
        "contract", "schema", "rows", "valid_rows", "invalid_rows", "passed", "checks", "failure_cases"
    ]  # fmt: skip
    assert doc["contract"] == {"id": "urn:test", "version": "1.0.0", "sha256": "f" * 64}
    assert (doc["schema"], doc["rows"], doc["valid_rows"], doc["invalid_rows"], doc["passed"]) == (
        "orders", 3, 1, 2, False
    )  # fmt: skip
    check = next(c for c in doc["checks"] if c["name"] == "amount:ge")
    assert check == {
        "name": "amount:ge",
        "column": "amount",
        "check": "greater_than_or_equal_to(0)",
        "severity": "error",
        "failures": 2,
        "failure_rate": pytest.approx(2 / 3),
        "passed": False,
        "value": 2,
        "threshold": "mustBe 0 rows",
        "dimension": "validity",
        "gates_rows": True,
        "error": None,
    }
    assert doc["failure_cases"] == [
        {
            "failure_case": "-1.0",
            "schema_context": "Column",
            "column": "amount",
            "check": "greater_than_or_equal_to(0)",
            "check_number": 0,
            "index": 0,
            "rule": "amount:ge",
        }
    ]
    assert len(r.to_dict()["failure_cases"]) == 2
    json.dumps(r.to_dict())  # plain JSON types only


# --- conformance ----------------------------------------------------------------------------------


def test_numeric_conformance_flags_lossy_casts_per_row() -> None:
    fields = [Field("n", "integer", pl.Int64(), required=True), Field("small", "integer", pl.Int8())]
    plan = plan_for(fields, [rule("n:ge", Op.GE, (0,), "n")])
    df = pl.DataFrame({"n": [1.0, 1.5, None, -2.0, float("nan")], "small": [1, 300, None, -1, 127]})
    r = plan.validate(df)
    assert [(c["index"], c["failure_case"]) for c in cases(r, "n:dtype")] == [(1, "1.5"), (4, "NaN")]
    assert [(c["index"], c["failure_case"]) for c in cases(r, "small:dtype")] == [(1, "300")]
    assert cases(r, "n:dtype")[0]["check"] == "dtype('Int64')"
    assert cases(r, "n:dtype")[0]["check_number"] is None
    # later rules see the conformed values; a value failing its dtype is not also a null
    assert [c["index"] for c in cases(r, "n:required")] == [2]
    assert [c["failure_case"] for c in cases(r, "n:ge")] == ["-2"]
    assert plan.conform(df).schema == pl.Schema({"n": pl.Int64(), "small": pl.Int8()})
    assert plan.conform(df)["n"].to_list() == [1, None, None, -2, None]
    assert r.valid_mask.to_list() == [True, False, False, False, False]


def test_string_to_temporal_conformance_parses_iso8601() -> None:
    fields = [Field("d", "date", pl.Date()), Field("t", "timestamp", pl.Datetime("us", "UTC"))]
    plan = plan_for(fields)
    df = pl.DataFrame(
        {
            "d": ["2024-02-29", "2024-02-30", None, "yesterday"],
            "t": ["2024-01-01T10:00:00Z", "2024-01-01 12:00:00.5+02:00", "2024-01-01T10:00:00", "soon"],
        }
    )
    r = plan.validate(df)
    assert [(c["index"], c["failure_case"]) for c in cases(r, "d:dtype")] == [
        (1, "2024-02-30"),
        (3, "yesterday"),
    ]
    assert [(c["index"], c["failure_case"]) for c in cases(r, "t:dtype")] == [(3, "soon")]
    out = plan.conform(df)
    assert out["d"].to_list() == [dt.date(2024, 2, 29), None, None, None]
    assert out["t"].to_list()[:3] == [
        dt.datetime(2024, 1, 1, 10, tzinfo=UTC),
        dt.datetime(2024, 1, 1, 10, 0, 0, 500000, tzinfo=UTC),
        dt.datetime(2024, 1, 1, 10, tzinfo=UTC),
    ]


NOON = dt.datetime(2024, 3, 1, 12, tzinfo=UTC)
LATER = dt.datetime(2024, 3, 1, 13, 30, 0, 250000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["2024-03-01T12:00:00Z", "2024-03-01T13:30:00.250Z", None], [NOON, LATER, None]),  # Arrow, zoned
        (["2024-03-01T14:00:00+02:00", "2024-03-01T15:30:00.25+0200", None], [NOON, LATER, None]),
        (["2024-03-01T12:00:00", "2024-03-01T13:30:00.250", None], [NOON, LATER, None]),  # Arrow, naive
        (["2024-03-01 12:00:00", "2024-03-01T13:30:00.250Z", None], [NOON, LATER, None]),  # polars layouts
        ([None, "2024-03-01T13:30:00.25+00:00", "later"], [None, LATER, None]),
    ],
)
def test_text_timestamps_parse_the_same_on_every_path(texts: list[str | None], expected: list[Any]) -> None:
    plan = plan_for([Field("t", "timestamp", pl.Datetime("ms", "UTC"))])
    df = pl.DataFrame({"t": texts}, schema={"t": pl.String()})
    assert plan.conform(df)["t"].to_list() == expected
    assert [c["failure_case"] for c in cases(plan.validate(df), "t:dtype")] == [t for t in texts if t == "later"]


def test_naive_text_timestamps_are_in_the_declared_zone() -> None:
    plan = plan_for([Field("t", "timestamp", pl.Datetime("us", "Europe/Paris"))])
    got = plan.conform(pl.DataFrame({"t": ["2024-06-01T12:00:00", "2024-06-01T10:00:00Z"]}))["t"]
    assert got.dt.convert_time_zone("UTC").to_list() == [dt.datetime(2024, 6, 1, 10, tzinfo=UTC)] * 2


def test_datetime_units_and_zones_are_converted() -> None:
    plan = plan_for([Field("t", "timestamp", pl.Datetime("ms", "UTC"))])
    paris = pl.Series("t", [dt.datetime(2024, 6, 1, 12)]).dt.replace_time_zone("Europe/Paris").dt.cast_time_unit("ns")
    r = plan.validate(paris.to_frame())
    assert r.passed
    assert plan.conform(paris.to_frame())["t"].to_list() == [dt.datetime(2024, 6, 1, 10, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("values", "declared"),
    [
        (["1", "2"], pl.Int64()),  # String -> numeric
        ([1, 2], pl.String()),  # numeric -> String
        ([True, False], pl.Int64()),  # Boolean -> numeric
        ([1, 0], pl.Boolean()),  # numeric -> Boolean
        ([[1], [2]], pl.Int64()),  # nested -> numeric
    ],
)
def test_other_dtype_pairs_are_a_mismatch_for_every_non_null_value(values: list[Any], declared: Any) -> None:
    plan = plan_for([Field("x", "any", declared, required=True)])
    r = plan.validate(pl.DataFrame({"x": [*values, None]}))
    assert [c["index"] for c in cases(r, "x:dtype")] == [0, 1]
    assert [c["index"] for c in cases(r, "x:required")] == [2]  # a dtype failure is not also a null
    assert r.check("x:dtype").failures == 2 and not r.passed
    assert plan.conform(pl.DataFrame({"x": values})).schema["x"] == declared


def test_null_dtype_columns_conform_without_failures() -> None:
    plan = plan_for([Field("x", "integer", pl.Int64())])
    r = plan.validate(pl.DataFrame({"x": [None, None]}))
    assert r.passed and r.failure_cases.height == 0


# --- missing and extra columns, redaction ------------------------------------------------------------


def test_missing_columns_fail_like_pandera_and_read_as_null() -> None:
    plan = plan_for(ORDER_FIELDS)
    r = plan.validate(orders().drop("id").with_columns(note=pl.lit("x")))
    assert r.missing_columns == ("id",) and r.extra_columns == ("note",)
    schema_level = [c for c in cases(r) if c["check"] == "column_in_dataframe"]
    assert schema_level == [
        {
            "failure_case": "id",
            "schema_context": "DataFrameSchema",
            "column": None,
            "check": "column_in_dataframe",
            "check_number": None,
            "index": None,
            "rule": "id:dtype",
        }
    ]
    assert [c["index"] for c in cases(r, "id:required")] == [0, 1, 2]
    assert not r.passed and not r.check("id:dtype").passed and r.invalid_rows == 3
    assert plan.conform(orders().drop("id").with_columns(note=pl.lit("x"))).columns == [
        "id", "amount", "email", "ts", "note"
    ]  # fmt: skip


def test_optional_missing_column_passes_like_the_worker_routes_it() -> None:
    plan = plan_for(ORDER_FIELDS)
    r = plan.validate(orders().drop("email"))
    assert r.missing_columns == ("email",) and r.valid_rows == 3
    assert r.passed and r.check("email:dtype").passed and r.check("email:dtype").failures == 0
    assert not [c for c in cases(r) if c["check"] == "column_in_dataframe"]


def test_redacted_values_never_reach_the_report() -> None:
    expr = parse_expression("amount < 25")
    plan = plan_for(
        ORDER_FIELDS,
        [rule("email:len", Op.STR_LENGTH, (1, 6), "email"), rule("small", Op.EXPRESSION, (expr,))],
    )
    r = plan.validate(orders(email=["a@x.io", "bob@example.org", None]))
    rendered = json.dumps(r.to_dict())
    assert "bob@example.org" not in rendered and "a@x.io" not in rendered
    assert [c["failure_case"] for c in cases(r, "email:len")] == ["[REDACTED]"]
    row = json.loads(cases(r, "small")[0]["failure_case"])
    assert row["email"] is None and row["amount"] == 30.0 and set(row) == {"id", "amount", "email", "ts"}
    r = plan.validate(orders(email=["a@x.io", "b", "c"], amount=[1.0, 2.0, 99.0]))
    assert json.loads(cases(r, "small")[0]["failure_case"])["email"] == "[REDACTED]"


# --- thresholds, severities, batch metrics ---------------------------------------------------------------


def test_row_and_percent_thresholds() -> None:
    rules = [
        rule("few", Op.GE, (0,), "amount", threshold=Threshold("mustBeLessThan", 3)),
        rule("share", Op.GE, (0,), "amount", threshold=Threshold("mustBeLessOrEqualTo", 25, Unit.PERCENT)),
    ]
    plan = plan_for(ORDER_FIELDS, rules)
    r = plan.validate(orders(id=[1, 2, 3, 4], amount=[-1.0, -2.0, 1.0, 2.0], email=["e"] * 4, ts=[None] * 4))
    few, share = r.check("few"), r.check("share")
    assert (few.failures, few.value, few.passed, few.gates_rows) == (2, 2, True, False)
    assert (share.failures, share.value, share.passed, share.threshold) == (
        2,
        50.0,
        False,
        "mustBeLessOrEqualTo 25 percent",
    )
    assert share.failure_rate == 0.5
    assert not r.passed and r.valid_rows == 4  # thresholded rules never gate rows
    assert r.violations.to_list()[:2] == [["few", "share"], ["few", "share"]]
    assert cases(r, "few") == []
    assert cases(r, "share") == [
        {
            "failure_case": "50",
            "schema_context": "DataFrameSchema",
            "column": "amount",
            "check": "greater_than_or_equal_to(0)",
            "check_number": 1,
            "index": None,
            "rule": "share",
        }
    ]


def test_warning_rules_report_rows_without_failing_the_batch() -> None:
    plan = plan_for(ORDER_FIELDS, [rule("amount:ge", Op.GE, (0,), "amount", severity=Severity.WARNING)])
    r = plan.validate(orders(amount=[-1.0, 1.0, 2.0]))
    assert r.passed and r.valid_rows == 3 and r.failed_checks()[0].name == "amount:ge"
    assert [c["index"] for c in cases(r, "amount:ge")] == [0]
    assert r.violations.to_list() == [["amount:ge"], [], []]


def test_row_count_and_sql_metrics() -> None:
    rules = [
        rule("rows", Op.ROW_COUNT, (), threshold=Threshold("mustBeGreaterOrEqualTo", 3)),
        rule(
            "big",
            Op.SQL,
            ("SELECT COUNT(*) FROM orders WHERE amount > 15",),
            threshold=Threshold("mustBe", 2),
        ),
        rule("avg", Op.SQL, ("SELECT AVG(amount) FROM batch",), threshold=Threshold("mustBeBetween", (0, 5))),
        rule("broken", Op.SQL, ("SELECT nope FROM orders",)),
        rule("text", Op.SQL, ("SELECT 'x' FROM orders LIMIT 1",)),
        rule(
            "pct",
            Op.SQL,
            ("SELECT 100.0 * SUM(CASE WHEN amount > 15 THEN 1 ELSE 0 END) / COUNT(*) FROM batch",),
        ),
    ]
    plan = plan_for(ORDER_FIELDS, rules)
    r = plan.validate(orders())
    assert (r.check("rows").value, r.check("rows").passed) == (3, True)
    assert (r.check("big").value, r.check("big").passed) == (2, True)
    assert (r.check("avg").value, r.check("avg").passed, r.check("avg").failures) == (20.0, False, 1)
    broken = r.check("broken")
    assert not broken.passed and broken.value is None and "nope" in str(broken.error)
    assert "not a number" in str(r.check("text").error)
    assert r.check("pct").value == pytest.approx(200 / 3) and r.check("pct").error is None  # a Decimal
    by_rule = {c["rule"]: c for c in cases(r)}
    assert by_rule["avg"]["failure_case"] == "20" and by_rule["avg"]["index"] is None
    assert by_rule["broken"]["failure_case"] == broken.error
    # batch metrics that run never gate rows; the two that cannot run fail every row (fail closed)
    assert not r.passed and r.valid_rows == 0
    assert r.gating().to_list() == [["broken", "text"]] * 3 and r.violations.to_list() == r.gating().to_list()
    lenient = plan_for(ORDER_FIELDS, rules, on_rule_error="pass").validate(orders())
    assert not lenient.passed and lenient.valid_rows == 3 and lenient.check("broken").error == broken.error


def test_expression_rules_fail_rows_as_json_and_pass_on_null() -> None:
    expr = parse_expression("amount <= 10 * id")
    plan = plan_for(ORDER_FIELDS, [rule("ratio", Op.EXPRESSION, (expr,))])
    r = plan.validate(orders(amount=[5.0, 99.0, None]))
    [case] = cases(r, "ratio")
    assert (case["index"], case["schema_context"], case["column"], case["check"]) == (
        1, "DataFrameSchema", None, "expression((amount <= (10 * id)))"
    )  # fmt: skip
    assert json.loads(case["failure_case"]) == {
        "id": 2, "amount": 99.0, "email": "[REDACTED]", "ts": "2024-01-01T01:00:00+00:00"
    }  # fmt: skip
    assert r.valid_mask.to_list() == [True, False, True]


def test_uniqueness_ignores_nulls_and_measures_rows_minus_distinct() -> None:
    plan = plan_for([Field("k", "string", pl.String(), unique=True), Field("n", "integer", pl.Int64(), unique=True)])
    r = plan.validate(pl.DataFrame({"k": ["a", "b", "a", None, None, "a"], "n": [1, 2, 3, 4, 5, 6]}))
    # nulls are not duplicates (ODCS leaves them to `required`); every row of a group fails
    assert [c["index"] for c in cases(r, "k:unique")] == [0, 2, 5]
    assert r.check("k:unique").failures == 3 and r.check("k:unique").value == 2  # 3 rows - 1 distinct
    assert r.check("n:unique").passed and r.valid_mask.to_list() == [False, True, False, True, True, False]


def test_more_than_63_failing_rules_still_list_every_violation() -> None:
    fields = [Field("x", "integer", pl.Int64())]
    rules = [rule(f"r{i}", Op.NE, (i,), "x") for i in range(70)]
    plan = plan_for(fields, rules)
    r = plan.validate(pl.DataFrame({"x": [*range(70), 1000]}))
    assert r.violations.to_list() == [[f"r{i}"] for i in range(70)] + [[]]
    assert r.invalid_rows == 70


def test_every_rule_kind_on_one_batch() -> None:
    fields = [
        Field("n", "integer", pl.Int64()),
        Field("s", "string", pl.String()),
        Field("f", "number", pl.Float64(), required=True),
    ]
    rules = [
        rule("eq", Op.EQ, (1,), "n"), rule("ne", Op.NE, (1,), "n"), rule("gt", Op.GT, (1,), "n"),
        rule("lt", Op.LT, (1,), "n"), rule("le", Op.LE, (1,), "n"),
        rule("rng", Op.IN_RANGE, (0, 2, False, True), "n"), rule("in", Op.ISIN, ((1, 2),), "n"),
        rule("notin", Op.NOTIN, ((1,),), "n"), rule("mult", Op.MULTIPLE_OF, (2,), "n"),
        rule("match", Op.STR_MATCHES, ("a+",), "s"), rule("contains", Op.STR_CONTAINS, ("b",), "s"),
        rule("starts", Op.STR_STARTSWITH, ("a",), "s"), rule("ends", Op.STR_ENDSWITH, ("a",), "s"),
        rule("len", Op.STR_LENGTH, (None, 1), "s"), rule("missing", Op.MISSING, (("", "n/a"),), "s"),
        rule("sin", Op.ISIN, (("a", "ab"),), "s"), rule("snotin", Op.NOTIN, (("ab",),), "s"),
    ]  # fmt: skip
    plan = plan_for(fields, rules)
    df = pl.DataFrame({"n": [1, 2, None], "s": ["a", "ab", "n/a"], "f": [0.5, float("nan"), None]})
    failing = {c.name: c.failures for c in plan.validate(df).checks if c.failures}
    assert failing == {
        "f:required": 2, "eq": 1, "ne": 1, "gt": 1, "lt": 2, "le": 1, "notin": 1, "mult": 1, "match": 1,
        "contains": 2, "starts": 1, "ends": 1, "len": 2, "missing": 1, "sin": 1, "snotin": 1,
    }  # fmt: skip


# --- never raise ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "df",
    [
        pl.DataFrame(),
        pl.DataFrame(schema={"id": pl.Int64()}),
        pl.DataFrame({"id": [None, None]}),
        pl.DataFrame({"id": [[1, 2], None], "amount": [{"a": 1}, None]}),
        pl.DataFrame({"id": ["x", "1"], "amount": ["NaN", "1e400"], "ts": [1, 2], "email": [b"\xff", None]}),
        pl.DataFrame({"__qs_m0": [1], "__qs_index": [2], "id": [1]}),
        pl.DataFrame({"id": [object(), None]}, schema={"id": pl.Object}),
    ],
)
def test_garbage_frames_never_raise(df: pl.DataFrame) -> None:
    expr = parse_expression("amount / id > 0")
    plan = plan_for(
        ORDER_FIELDS,
        [
            rule("ge", Op.GE, (0,), "amount"),
            rule("e", Op.EXPRESSION, (expr,)),
            rule("q", Op.SQL, ("SELECT SUM(amount) FROM orders",)),
            rule("rows", Op.ROW_COUNT, (), threshold=Threshold("mustBeGreaterThan", 0)),
        ],
    )
    r = plan.validate(df)
    assert r.rows == df.height == r.valid_mask.len() == r.violations.len()
    json.dumps(r.to_dict())


def test_rules_that_cannot_run_are_reported_not_raised() -> None:
    rules = [
        rule("typed", Op.GE, ("x",), "id"),
        rule("regex", Op.STR_MATCHES, ("(",), "email"),
        rule("ghost", Op.EXPRESSION, (parse_expression("ghost > 1"),)),
        rule("numeric", Op.EXPRESSION, (parse_expression("id + 1"),)),
        rule("undeclared", Op.GE, (0,), "nowhere"),
        rule("ok", Op.GE, (2,), "id"),
    ]
    plan = plan_for(ORDER_FIELDS, rules)
    r = plan.validate(orders())
    for name in ("typed", "regex", "ghost", "numeric", "undeclared"):
        result = r.check(name)
        assert not result.passed and result.error, name
        [case] = cases(r, name)
        assert case["failure_case"] == result.error and case["index"] is None
    assert r.check("ok").failures == 1 and r.check("id:dtype").passed
    assert "not Boolean" in str(r.check("numeric").error)


def test_plans_adapt_to_each_input_schema_and_accept_lazy_frames() -> None:
    plan = plan_for(ORDER_FIELDS, [rule("amount:ge", Op.GE, (0,), "amount")])
    assert plan.validate(orders().lazy()).passed  # type: ignore[arg-type]
    r = plan.validate(orders(amount=["1", "2", "3"]))
    assert r.check("amount:dtype").failures == 3
    assert plan.validate(orders()).passed
    with pytest.raises(TypeError):
        plan.validate({"id": [1]})  # type: ignore[arg-type]


def test_contract_validate_uses_the_engine_and_example_contracts_compile() -> None:
    from streams.contracts.loader import load_contract

    contract = load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml")
    schema = contract.schema()
    report = contract.validate(pl.DataFrame(schema=schema.polars_schema))
    assert report.rows == 0 and report.schema == schema.name
    assert isinstance(contract.to_pandera(), pa.DataFrameSchema)


def test_run_time_failures_are_isolated_per_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.validation import engine

    df = pl.DataFrame({"s": ["2024", "x"]})
    errors: dict[int, str] = {}
    strict = pl.col("s").str.to_date("%Y", strict=True).is_null().sum()  # fails only on data
    out = engine._evaluate(df, {0: pl.col("s").is_null().sum(), 1: strict}, errors)
    assert out.columns == ["0"] and list(errors) == [1]

    def broken(*_: Any) -> pl.DataFrame:
        raise RuntimeError("conformance exploded")

    plan = plan_for(ORDER_FIELDS, [rule("amount:ge", Op.GE, (0,), "amount")])
    monkeypatch.setattr(engine.CompiledPlan, "_conform", broken)
    r = plan.validate(orders())
    # the message of a conformance failure may quote any value: redacted (email is classified)
    assert not r.passed and r.check("amount:ge").error == (
        "RuntimeError: [REDACTED] (the message may carry values of classified column(s) email)"
    )
    assert r.invalid_rows == 3 and r.gating_violations is not None  # fail closed
    assert plan.conform(orders())["id"].to_list() == [None] * 3


def test_reports_do_not_depend_on_the_previous_batch() -> None:
    """Masks of the rules that failed last time come from pass 1: a changing set of failing
    rules, in both directions, gives the reports of a fresh plan."""
    rules = [
        rule("amount:ge", Op.GE, (0,), "amount"),
        rule("email:pattern", Op.STR_CONTAINS, ("^[a-z]@x\\.io$",), "email"),
        rule("few", Op.LE, (25,), "amount", threshold=Threshold("mustBeLessThan", 50, Unit.PERCENT)),
        rule("e", Op.EXPRESSION, (parse_expression("amount > id"),)),
    ]
    batches = [
        orders(),
        orders(amount=[-1.0, 20.0, 30.0]),
        orders(email=["a@x.io", "bb@x.io", None], id=[1, 1, 3]),
        orders(),
        orders(amount=[-1.0, 0.5, 40.0], email=["Z", "b@x.io", "c@x.io"]),
        orders(amount=[None, None, None]),
    ]
    plan = plan_for(ORDER_FIELDS, rules)
    for batch in batches * 2:
        got, want = plan.validate(batch), plan_for(ORDER_FIELDS, rules).validate(batch)
        assert got.checks == want.checks and got.failure_cases.equals(want.failure_cases)
        assert got.valid_mask.equals(want.valid_mask) and got.violations.equals(want.violations)


def test_kept_case_expressions_follow_the_input_schema_and_masks() -> None:
    """The failure-case and verdict expressions a plan keeps (per rule, mask and input) give the
    report of a fresh plan when the same rules fail on inputs of other dtypes, other extra
    columns or another set of failing rules."""
    rules = [
        rule("amount:ge", Op.GE, (0,), "amount"),
        rule("e", Op.EXPRESSION, (parse_expression("amount > id"),)),
        rule("id:le", Op.LE, (2,), "id"),
    ]
    batches = [
        orders(amount=[-1.0, 20.0, 0.5]),
        orders(amount=[-1, 20, 0]),  # Int64 amounts: conformed, the dtype rule's source is the original column
        orders(amount=["-1", "x", None]),  # text: a dtype failure per non-null value
        orders(amount=[-1.0, 20.0, 0.5]).with_columns(extra=pl.lit("z")),  # the expression shows every column
        orders(id=[5, 1, 1], amount=[-1.0, 2.0, 3.0]),
        orders(amount=[-1.0, 20.0, 0.5]),
    ]
    plan = plan_for(ORDER_FIELDS, rules)
    for batch in batches * 2:
        got, want = plan.validate(batch), plan_for(ORDER_FIELDS, rules).validate(batch)
        assert got.failure_cases.height > 0
        assert got.checks == want.checks and got.failure_cases.equals(want.failure_cases)
        assert got.valid_mask.equals(want.valid_mask) and got.violations.equals(want.violations)
        assert got.gating().equals(want.gating())
