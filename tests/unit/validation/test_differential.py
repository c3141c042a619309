"""The fused engine against pandera, the semantic reference, and the pandera backend itself.

Hypothesis generates random schema objects (a random subset of columns typed
Int64, Float64, String, Boolean, Date or Datetime(us, UTC); random zero-tolerance,
error-severity rules: every element-wise op, ``not_nullable``, ``field_uniqueness``,
``multiple_of``, ``missing_values`` and multi-column ``expression`` rules) and random
frames of the declared dtypes (nulls, NaN/inf, duplicates, boundary values drawn
from the same pools as the rule arguments). For each pair it checks that

* the engine's failure cases equal pandera's ``validate(lazy=True)`` failure cases
  as a multiset of ``(schema_context, column, check, check_number, index)``, and
  their ``failure_case`` strings are identical;
* ``valid_mask`` is False exactly on the rows pandera reports.

Where the generator is narrower than the engine, and why (known differences):

* Frames always have the declared dtypes and every declared column. A dtype
  mismatch is reported per row by the engine, as one column-level case with a
  null index by pandera; a missing column also fails the column's other rules
  per row in the engine (it reads as all-null), while pandera skips them. Both
  are covered by the example tests in ``test_engine.py``.
* Frames have at least two columns: for a frame-level check on a one-column frame
  pandera renders the bare value as ``failure_case``, the engine always renders
  the row as JSON.
* Thresholded rules and batch metrics are not generated: the engine reports the
  metric (``"7"``) as the summary ``failure_case``, pandera the error raised by
  the scalar check (``ThresholdBreach("7 breaks ...")``): same cases otherwise.
* No redacted columns: the engine replaces their values by ``[REDACTED]``.

Where the engine differs from pandera on purpose (the comparison leaves it out):

* ``field_uniqueness`` and nulls: pandera's ``unique=True`` reports every null of a
  column with two or more nulls as a duplicate; the engine does not (ODCS leaves nulls
  to ``required``, as datacontract-cli does). pandera's uniqueness cases with a null
  ``failure_case`` are dropped from the reference before comparing.
"""

from __future__ import annotations

import datetime as dt
import sys
import types
from collections import Counter
from typing import Any
from unittest import mock

import pandera.polars as pa
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandera.errors import SchemaErrors

from streams.contracts.expressions import parse_expression
from streams.contracts.model import (
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
from streams.errors import ContractError, UnsupportedRuleError
from streams.validation import compile_plan, engine
from streams.validation.engine import rule_layout
from streams.validation.pandera import from_pandera, load_pandera_object, to_pandera
from tests.unit.validation.test_engine import ORDER_FIELDS, orders, plan_for, rule, typed

UTC = dt.UTC
DATETIME = pl.Datetime("us", "UTC")
POOLS: dict[str, list[Any]] = {
    "Int64": [-(2**62), -3, -1, 0, 1, 2, 3, 4, 10, 2**62],
    "Float64": [-1.5, -0.0, 0.0, 0.5, 1.0, 2.0, 2.5, 10.0, float("inf"), float("-inf"), float("nan")],
    "String": ["", "a", "ab", "abc", "b", "ba", "B", "é", "x y", "a.b"],
    "Boolean": [True, False],
    "Date": [dt.date(1970, 1, 1), dt.date(2024, 2, 29), dt.date(2024, 3, 1), dt.date(9999, 12, 31)],
    "Datetime": [dt.datetime(2024, 1, 1, h, tzinfo=UTC) for h in (0, 1, 12)] + [dt.datetime(1999, 12, 31, tzinfo=UTC)],
}
DTYPES: dict[str, pl.DataType] = {
    "Int64": pl.Int64(),
    "Float64": pl.Float64(),
    "String": pl.String(),
    "Boolean": pl.Boolean(),
    "Date": pl.Date(),
    "Datetime": DATETIME,
}
COMPARISONS = [Op.EQ, Op.NE, Op.GT, Op.GE, Op.LT, Op.LE]
STRING_OPS = [Op.STR_MATCHES, Op.STR_CONTAINS, Op.STR_STARTSWITH, Op.STR_ENDSWITH]
OPS: dict[str, list[Op]] = {
    "Int64": [*COMPARISONS, Op.IN_RANGE, Op.ISIN, Op.NOTIN, Op.MULTIPLE_OF],
    "Float64": [*COMPARISONS, Op.IN_RANGE, Op.ISIN, Op.NOTIN, Op.MULTIPLE_OF],
    "String": [*COMPARISONS, Op.ISIN, Op.NOTIN, Op.STR_LENGTH, Op.MISSING, *STRING_OPS],
    "Boolean": [Op.EQ, Op.NE, Op.ISIN, Op.NOTIN],
    "Date": [*COMPARISONS, Op.IN_RANGE, Op.ISIN, Op.NOTIN],
    "Datetime": [*COMPARISONS, Op.IN_RANGE],
}
PATTERNS = ["a", "b+", "^a", "a$", "[ab]", ".", r"\.", "é", "x y", "^$"]
# patterns the engine evaluates without a regex (streams.validation.regex); "é" is 2 bytes long
PATTERNS += ["^[a-z]{2}$", "^[ab]{2}$", "^[^ ]+$", "^.{1,2}$", "^[ab]b?$", r"^a\.b$", "^[a-z]{1,3}$", "^[A-Za-z]$"]


@st.composite
def rule_args(draw: st.DrawFn, op: Op, kind: str) -> tuple[Any, ...]:
    pool = POOLS[kind]
    if kind == "Float64":
        pool = [v for v in pool if v == v]  # NaN as an argument is a pandera/polars corner, not a contract
    value = st.sampled_from(pool)
    if op in COMPARISONS:
        return (draw(value),)
    if op is Op.IN_RANGE:
        lo, hi = sorted([draw(value), draw(value)])
        if lo == hi:  # pandera refuses to build an empty interval (the engine would fail every row)
            return (lo, hi, True, True)
        return (lo, hi, draw(st.booleans()), draw(st.booleans()))
    if op in (Op.ISIN, Op.NOTIN):
        return (tuple(draw(st.lists(value, min_size=1, max_size=4, unique=True))),)
    if op is Op.MULTIPLE_OF:
        return (draw(st.sampled_from([1, 2, 3] if kind == "Int64" else [0.5, 1, 2.5])),)
    if op in (Op.STR_MATCHES, Op.STR_CONTAINS):
        return (draw(st.sampled_from(PATTERNS)),)
    if op in (Op.STR_STARTSWITH, Op.STR_ENDSWITH):
        return (draw(st.sampled_from(["", "a", "b", "é", "x"])),)
    if op is Op.STR_LENGTH:
        lo = draw(st.none() | st.integers(0, 3))
        hi = draw(st.integers(0, 3) if lo is None else st.none() | st.integers(lo, 4))
        return (lo, hi)
    if op is Op.MISSING:
        return (tuple(draw(st.lists(st.sampled_from([None, "", "a", "n/a"]), min_size=1, max_size=3, unique=True))),)
    raise AssertionError(op)


@st.composite
def expressions(draw: st.DrawFn, kinds: dict[str, str]) -> str:
    numeric = [c for c, k in kinds.items() if k in ("Int64", "Float64")]
    strings = [c for c, k in kinds.items() if k == "String"]
    booleans = [c for c, k in kinds.items() if k == "Boolean"]
    atoms = [f"is_null({c})" for c in kinds] + [f"is_not_null({c})" for c in kinds]
    atoms += [f"{c} == {draw(st.sampled_from(['a', 'ab', '']))!r}" for c in strings]
    atoms += [f"{c} in ['a', 'b']" for c in strings] + [f"{c} == True" for c in booleans]
    for a in numeric:
        for b in numeric:
            op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
            atoms.append(f"{a} {op} {b}" if a != b else f"abs({a}) {op} {draw(st.sampled_from([0, 1, 2.5]))}")
            atoms.append(f"{a} + {b} * 2 > {draw(st.sampled_from([-1, 0, 3]))}")
    parts = draw(st.lists(st.sampled_from(atoms), min_size=1, max_size=3))
    text = parts[0]
    for p in parts[1:]:
        text = f"({text}) {draw(st.sampled_from(['and', 'or']))} {'not ' if draw(st.booleans()) else ''}({p})"
    return text


@st.composite
def cases(draw: st.DrawFn) -> tuple[SchemaObject, pl.DataFrame]:
    names = draw(st.lists(st.sampled_from([f"c{i}" for i in range(8)]), min_size=2, max_size=6, unique=True))
    kinds = {n: draw(st.sampled_from(list(DTYPES))) for n in names}
    fields, rules = [], []
    for n, kind in kinds.items():
        required = draw(st.booleans())
        unique = draw(st.integers(0, 3)) == 0
        fields.append(Field(n, kind.lower(), DTYPES[kind], required=required, unique=unique))
        rules.append(Rule(f"{n}:dtype", Op.DTYPE, (), check_label(Op.DTYPE, (), DTYPES[kind]), n))
        if required:
            rules.append(Rule(f"{n}:required", Op.NOT_NULL, (), "not_nullable", n))
        if unique:
            rules.append(Rule(f"{n}:unique", Op.UNIQUE, (), "field_uniqueness", n))
        for i, op in enumerate(draw(st.lists(st.sampled_from(OPS[kind]), max_size=4))):
            args = draw(rule_args(op, kind))
            rules.append(Rule(f"{n}:{op.value}#{i}", op, args, check_label(op, args), n))
    for i in range(draw(st.integers(0, 2))):
        node = parse_expression(draw(expressions(kinds)))
        rules.append(Rule(f"expr#{i}", Op.EXPRESSION, (node,), check_label(Op.EXPRESSION, (node,))))
    rows = draw(st.integers(0, 25))
    data = {
        n: draw(st.lists(st.none() | st.sampled_from(POOLS[kind]), min_size=rows, max_size=rows))
        for n, kind in kinds.items()
    }
    frame = pl.DataFrame(data, schema={n: DTYPES[k] for n, k in kinds.items()})
    return SchemaObject("batch_table", "t", tuple(fields), tuple(rules)), frame


def pandera_cases(schema_obj: SchemaObject, df: pl.DataFrame) -> pl.DataFrame | None:
    """pandera's failure cases, without its null duplicates (see the module docstring)."""
    try:
        to_pandera(schema_obj).validate(df, lazy=True)
    except SchemaErrors as exc:
        null_duplicate = (pl.col("check") == "field_uniqueness") & pl.col("failure_case").is_null()
        cases = exc.failure_cases.filter(~null_duplicate)
        return cases if cases.height else None
    return None


KEY = ["schema_context", "column", "check", "check_number", "index"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases())
def test_engine_matches_pandera(case: tuple[SchemaObject, pl.DataFrame]) -> None:
    schema_obj, df = case
    contract = Contract("urn:diff", "1", "active", "0" * 64, (schema_obj,))
    report = compile_plan(contract).validate(df)
    with mock.patch.object(engine, "_size_class", return_value=None):  # as on large batches
        large = compile_plan(contract).validate(df)
    assert large.failure_cases.equals(report.failure_cases) and large.valid_mask.equals(report.valid_mask)
    reference = pandera_cases(schema_obj, df)
    ours = Counter(report.failure_cases.select(*KEY, "failure_case").iter_rows())
    theirs = Counter(reference.select(*KEY, "failure_case").iter_rows()) if reference is not None else Counter()
    assert ours == theirs, (ours - theirs, theirs - ours)
    flagged = {i for (*_, i, _) in theirs if i is not None}
    assert {i for i, ok in enumerate(report.valid_mask) if not ok} == flagged
    assert report.passed == (reference is None)
    assert report.invalid_rows == len(flagged)


# --- the pandera backend: the reference itself ---------------------------------------------------

OP_CASES: list[tuple[Op, tuple[Any, ...], str]] = [
    (Op.EQ, (1,), "equal_to"),
    (Op.NE, (1,), "not_equal_to"),
    (Op.GT, (0,), "greater_than"),
    (Op.GE, (0.5,), "greater_than_or_equal_to"),
    (Op.LT, (10,), "less_than"),
    (Op.LE, (10,), "less_than_or_equal_to"),
    (Op.IN_RANGE, (0, 1, True, False), "in_range"),
    (Op.ISIN, (("a", "b"),), "isin"),
    (Op.NOTIN, ((1, 2),), "notin"),
    (Op.STR_MATCHES, ("^a+$",), "str_matches"),
    (Op.STR_CONTAINS, ("b",), "str_contains"),
    (Op.STR_STARTSWITH, ("a",), "str_startswith"),
    (Op.STR_ENDSWITH, ("z",), "str_endswith"),
    (Op.STR_LENGTH, (1, 64), "str_length"),
    (Op.STR_LENGTH, (None, 64), "str_length"),
    (Op.MULTIPLE_OF, (5,), "multiple_of"),
    (Op.MISSING, ((None, ""),), "missing_values"),
]


@pytest.mark.parametrize(("op", "args", "name"), OP_CASES)
def test_pandera_checks_carry_the_rule_check_string(op: Op, args: tuple[Any, ...], name: str) -> None:
    r = rule("r", op, args, "x")
    schema = to_pandera(SchemaObject("t", "t", (Field("x", "any", pl.String()),), (r,)))
    [check] = schema.columns["x"].checks
    assert (check.name, check.error) == (name, r.check)
    if name in ("multiple_of", "missing_values"):
        return
    natural = getattr(pa.Check, name)(*[list(a) if isinstance(a, tuple) else a for a in args])
    assert natural.error == r.check  # the loader's label is pandera's own error string


def test_pandera_schema_layout_and_metadata() -> None:
    fields = [*ORDER_FIELDS]
    rules = [
        rule("amount:ge", Op.GE, (0,), "amount"),
        rule("amount:warn", Op.LE, (100,), "amount", severity=Severity.WARNING, dimension="validity"),
        rule("e", Op.EXPRESSION, (parse_expression("amount > id"),)),
        rule("share", Op.GE, (0,), "amount", threshold=Threshold("mustBeLessThan", 5, Unit.PERCENT)),
        rule("rows", Op.ROW_COUNT, (), threshold=Threshold("mustBeGreaterThan", 0)),
    ]
    so = SchemaObject("orders", "orders.v1", tuple(fields), (*typed(*fields), *rules))
    contract = Contract("urn:test", "1.0.0", "active", "f" * 64, (so,))
    schema = contract.to_pandera()
    col = schema.columns["amount"]
    assert [c.error for c in col.checks] == ["greater_than_or_equal_to(0)", "less_than_or_equal_to(100)"]
    assert col.checks[1].raise_warning and not schema.columns["id"].nullable and schema.columns["id"].unique
    assert [c.name for c in schema.checks] == ["expression", "greater_than_or_equal_to", "row_count"]
    assert schema.metadata["contract"]["id"] == "urn:test" and schema.metadata["contract"]["sha256"] == "f" * 64
    assert schema.metadata["rules"]["amount:warn"]["severity"] == "warning"
    assert schema.metadata["rules"]["amount:warn"]["dimension"] == "validity"
    assert col.metadata["rules"]["amount:ge"]["check"] == "greater_than_or_equal_to(0)"
    assert schema.columns["email"].metadata["redacted"]
    assert [s.placement for s in rule_layout(so) if s.rule.name in ("e", "share", "rows")] == ["frame"] * 3


def test_pandera_backend_agrees_on_thresholds_and_metrics() -> None:
    rules = [
        rule("share", Op.GE, (0,), "amount", threshold=Threshold("mustBeLessThan", 5, Unit.PERCENT)),
        rule("rows", Op.ROW_COUNT, (), threshold=Threshold("mustBeGreaterThan", 5)),
        rule("q", Op.SQL, ("SELECT COUNT(*) FROM orders",), threshold=Threshold("mustBe", 3)),
        rule("amount:ge", Op.GE, (0,), "amount"),
    ]
    plan = plan_for(ORDER_FIELDS, rules)
    df = orders(amount=[-1.0, 1.0, 2.0])
    report = plan.validate(df)
    with pytest.raises(SchemaErrors) as exc:
        to_pandera(plan.schema_obj).validate(df, lazy=True)
    failed = set(exc.value.failure_cases["check"].to_list())
    assert failed == {c.check for c in report.failed_checks()} == {"greater_than_or_equal_to(0)", "row_count"}


def test_from_pandera_reads_models_and_round_trips() -> None:
    class Orders(pa.DataFrameModel):
        id: int = pa.Field(ge=0, unique=True)
        name: str = pa.Field(nullable=True, str_length={"min_value": 1, "max_value": 8}, isin=["a", "bb"])
        score: float = pa.Field(nullable=True, in_range={"min_value": 0, "max_value": 1}, raise_warning=True)

    contract = from_pandera(Orders, contract_id="urn:pandera:orders", version="2.0.0", owner="ml-team")
    so = contract.schema()
    assert so.name == "Orders" and so.columns == ("id", "name", "score") and contract.owner.team == "ml-team"
    assert so.field("id").required and so.field("id").unique and not so.field("name").required
    got = {(r.column, r.op, r.args, r.check, r.severity) for r in so.rules}
    assert (("id", Op.GE, (0,), "greater_than_or_equal_to(0)", Severity.ERROR)) in got
    assert (("name", Op.ISIN, (("a", "bb"),), "isin(['a', 'bb'])", Severity.ERROR)) in got
    assert (("score", Op.IN_RANGE, (0, 1, True, True), "in_range(0, 1)", Severity.WARNING)) in got
    assert {r.op for r in so.rules if r.column == "id"} == {Op.DTYPE, Op.NOT_NULL, Op.UNIQUE, Op.GE}
    assert len(contract.sha256) == 64
    again = from_pandera(Orders, contract_id="urn:pandera:orders", version="2.0.0", owner="ml-team")
    assert contract.sha256 == again.sha256
    for other in ({"version": "2.0.1", "owner": "ml-team"}, {"version": "2.0.0", "owner": "other-team"}):
        assert contract.sha256 != from_pandera(Orders, contract_id="urn:pandera:orders", **other).sha256
    # IR -> pandera -> IR keeps the executable content of every rule, custom ones included
    rules = [
        rule("m", Op.MULTIPLE_OF, (5,), "id"),
        rule("miss", Op.MISSING, ((None, ""),), "name"),
        rule("e", Op.EXPRESSION, (parse_expression("id > 1"),)),
        rule("share", Op.GE, (0,), "score", threshold=Threshold("mustBeLessThan", 5, Unit.PERCENT)),
        rule("rows", Op.ROW_COUNT, (), threshold=Threshold("mustBeGreaterThan", 0)),
    ]
    so2 = SchemaObject("o", "o", so.fields, (*so.rules, *rules))
    back = from_pandera(to_pandera(so2), contract_id="x", version="1").schema()

    def key(r: Rule) -> tuple[Any, ...]:
        return (r.op, r.column, r.args, r.check, r.severity, r.threshold)

    assert sorted(map(key, back.rules), key=repr) == sorted(map(key, so2.rules), key=repr)
    assert plan_for(list(back.fields), list(back.rules)).validate(pl.DataFrame({"id": [5]})).rows == 1


def test_from_pandera_refuses_custom_checks() -> None:
    schema = pa.DataFrameSchema({"x": pa.Column(int, pa.Check(lambda d: d.lazyframe.select(pl.col("x") > 0)))})
    with pytest.raises(UnsupportedRuleError, match="custom pandera check"):
        from_pandera(schema, contract_id="x", version="1")
    regex = pa.DataFrameSchema({"x_.*": pa.Column(int, regex=True)})
    with pytest.raises(UnsupportedRuleError, match="regex"):
        from_pandera(regex, contract_id="x", version="1")
    with pytest.raises(ContractError):
        from_pandera(object(), contract_id="x", version="1")


def test_load_pandera_object_imports_trusted_code() -> None:
    module = types.ModuleType("qs_test_pandera_models")
    module.SCHEMA = pa.DataFrameSchema({"x": pa.Column(int)})  # type: ignore[attr-defined]
    module.NOT_A_SCHEMA = 3  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        assert load_pandera_object("qs_test_pandera_models:SCHEMA") is module.SCHEMA  # type: ignore[attr-defined]
        for bad in (
            "qs_test_pandera_models",
            "qs_test_pandera_models:NOPE",
            "qs_test_pandera_models:NOT_A_SCHEMA",
        ):
            with pytest.raises(ContractError):
                load_pandera_object(bad)
        with pytest.raises(ContractError):
            load_pandera_object("no_such_module_qs:X")
    finally:
        del sys.modules[module.__name__]
