"""Contracts are untrusted input: bounded parsing, allow-listed SQL, file:line errors and never a traceback."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from streams.contracts.expressions import ExpressionError, parse_expression
from streams.contracts.loader import lint_contract, load_contract
from streams.errors import ContractError, StreamsError

HEADER = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:hardening
version: 1.0.0
status: active
"""


def write(tmp_path: Path, body: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(HEADER + textwrap.dedent(body))
    return p


def custom_rule(impl: str, engine: str = "expression") -> str:
    return f"""\
schema:
  - name: orders
    properties:
      - {{name: a, logicalType: integer}}
      - {{name: b, logicalType: string}}
    quality:
      - type: custom
        engine: {engine}
        implementation: {impl!r}
"""


def refused(path: Path, line: int, *fragments: str) -> str:
    """Loading fails with a ContractError at ``path:line`` and lint reports the same place."""
    with pytest.raises(ContractError) as info:
        load_contract(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}:{line}: "), msg
    for fragment in fragments:
        assert fragment in msg, msg
    findings = lint_contract(path)
    assert [f.line for f in findings] == [line], findings
    return msg


def test_expression_error_is_a_streams_error() -> None:
    assert issubclass(ExpressionError, StreamsError)
    with pytest.raises(ContractError):
        parse_expression("__import__('os')")


@pytest.mark.parametrize(
    ("impl", "fragment"),
    [
        ("not " * 5000 + "a > 0", "limited to"),
        (" + ".join(["a"] * 2000) + " > 0", "limited to"),
        ("-" * 3000 + "a > 0", "nested too deeply"),
        ("(" * 900 + "a" + ")" * 900 + " > 0", "nested too deeply"),
    ],
    ids=["5000-not", "2000-term-sum", "3000-minus", "900-parens"],
)
def test_huge_or_deep_expressions_are_file_line_errors_not_recursion(tmp_path: Path, impl: str, fragment: str) -> None:
    refused(write(tmp_path, custom_rule(impl)), 14, fragment)


def test_deep_pandera_check_call_is_refused(tmp_path: Path) -> None:
    impl = "Check.isin(" + "[" * 800 + "]" * 800 + ")"
    body = f"""\
    schema:
      - name: orders
        properties:
          - name: b
            logicalType: string
            quality:
              - {{type: custom, engine: pandera, implementation: {impl!r}}}
    """
    refused(write(tmp_path, body), 12, "nested too deeply")


def test_ordinary_expressions_still_parse() -> None:
    node = parse_expression(" + ".join(["a"] * 50) + " <= 10 and not b in ['x']")
    assert node[0] == "and"


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("(?=a)b", "look-around"),
        (r"(a)\1", "backreferences"),
        ("(" * 1000 + "a" + ")" * 1000, "nested"),
        (r"\w{1000}{1000}", "size limit"),
        ("x" * 20_000, "limited to"),
    ],
    ids=["lookahead", "backreference", "1000-groups", "size-limit", "too-long"],
)
def test_patterns_compile_with_the_engine_regex(tmp_path: Path, pattern: str, fragment: str) -> None:
    body = f"""\
    schema:
      - name: orders
        properties:
          - name: b
            logicalType: string
            logicalTypeOptions:
              pattern: {json.dumps(pattern)}
    """
    refused(write(tmp_path, body), 12, "engine's regex", fragment)


def test_unicode_classes_supported_by_the_engine_are_accepted(tmp_path: Path) -> None:
    body = """\
    schema:
      - name: orders
        properties:
          - name: b
            logicalType: string
            logicalTypeOptions: {pattern: '^\\p{L}+$'}
            quality:
              - {type: custom, engine: pandera, implementation: "Check.str_matches(r'^\\\\p{Lu}')"}
    """
    path = write(tmp_path, body)
    assert lint_contract(path) == []
    rules = {r.name: r for r in load_contract(path).schema().rules}
    assert rules["b:pattern"].args == (r"^\p{L}+$",)


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@pytest.mark.timeout(20)
def test_billion_laughs_fails_fast_with_a_clear_error(tmp_path: Path) -> None:
    assert len(BILLION_LAUGHS) < 400
    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS)
    with pytest.raises(ContractError, match="expands to more than") as info:
        load_contract(path)
    assert str(info.value).startswith(f"{path}:")
    findings = lint_contract(path)
    assert len(findings) == 1 and "alias" in findings[0].message


def test_many_aliases_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "aliases.yaml"
    path.write_text("a: &a 1\nb: [" + ", ".join(["*a"] * 150) + "]\n")
    refused(path, 2, "aliases")


@pytest.mark.parametrize("style", ["flow", "block"])
def test_deep_nesting_is_a_file_line_error_not_recursion(tmp_path: Path, style: str) -> None:
    if style == "flow":
        text = HEADER + "customProperties: " + "[" * 600 + "]" * 600 + "\n"
    else:
        text = HEADER + "customProperties:\n" + "".join("  " * i + "- \n" for i in range(1, 600))
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    msg = refused(path, 6 if style == "flow" else 6 + 64, "nested more than")
    assert "RecursionError" not in msg


def test_moderate_aliases_still_work(tmp_path: Path) -> None:
    body = """\
    schema:
      - name: orders
        properties:
          - name: a
            logicalType: string
            quality: &q
              - {type: library, metric: nullValues, mustBeLessThan: 1}
          - name: b
            logicalType: string
            quality: *q
    """
    rules = load_contract(write(tmp_path, body)).schema().rules
    assert {r.name for r in rules if r.source == "quality"} == {"a:nullValues", "b:nullValues"}


def test_yaml_timestamps_are_strings_before_schema_validation(tmp_path: Path) -> None:
    body = """\
    schema:
      - name: orders
        properties:
          - name: day
            logicalType: date
            examples: [2022-01-01, 2023-06-30]
            logicalTypeOptions: {minimum: 2020-01-01}
          - name: at
            logicalType: timestamp
            examples: [2022-01-01T10:00:00Z]
    """
    path = write(tmp_path, body)
    assert lint_contract(path) == []
    rules = {r.name: r for r in load_contract(path).schema().rules}
    assert str(rules["day:minimum"].args[0]) == "2020-01-01"


def sql_rule(query: str) -> str:
    return f"""\
schema:
  - name: orders
    physicalName: shop.orders.v1
    properties:
      - {{name: amount, logicalType: number}}
      - {{name: email, logicalType: string, classification: pii}}
    quality:
      - type: sql
        query: {json.dumps(query)}
        mustBe: 0
"""


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("SELECT COUNT(*) FROM read_csv('/etc/passwd')", "table function"),
        ("SELECT COUNT(*) FROM read_parquet('http://example.com/x.parquet')", "table function"),
        ("SELECT COUNT(*) FROM orders, orders, orders", "joins are not allowed"),
        ("SELECT COUNT(*) FROM orders a JOIN orders b ON TRUE", "joins are not allowed"),
        ("SELECT COUNT(*) FROM orders; SELECT 1", "exactly one SELECT"),
        ("INSERT INTO orders VALUES (1, 'a')", "not INSERT"),
        ("DROP TABLE orders", "not DROP"),
        ("SELECT COUNT(*) FROM customers", "relation 'customers' is not allowed"),
        ("SELECT COUNT(*) FROM shop.orders", "is not allowed"),
        ("SELECT COUNT(*) FROM orders WHERE amount IN (SELECT x FROM secrets)", "relation 'secrets'"),
        ("WITH x AS (SELECT amount FROM orders) SELECT COUNT(*) FROM x", "WITH is not allowed"),
        ("SELECT pg_read_file('/etc/passwd')", "function 'PG_READ_FILE' is not allowed"),
        ("SELECT COUNT(*) FROM orders WHERE amount2 > 0", "unknown columns: amount2"),
        ("SELECT SUM(amount) OVER () FROM orders", "window functions"),
        ("SELECT * FROM orders", "exactly one value"),
        ("SELECT COUNT(*) FROM orders WHERE " + " AND ".join(["amount > 0"] * 400), "limited to"),
        ("SELEC COUNT(*)", "cannot be parsed"),
    ],
    ids=lambda v: v if len(v) < 40 else v[:40],
)
def test_sql_rules_are_allow_listed(tmp_path: Path, query: str, fragment: str) -> None:
    msg = refused(write(tmp_path, sql_rule(query)), 14, fragment)
    assert "Traceback" not in msg


def test_allowed_sql_runs_what_was_checked(tmp_path: Path) -> None:
    import polars as pl

    query = "select 100.0 * sum(case when amount > 10 then 1 else 0 end) / count(*) from ${object} where email ~ '@'"
    path = write(tmp_path, sql_rule(query).replace("mustBe: 0", "mustBeLessThan: 50"))
    assert lint_contract(path) == []
    contract = load_contract(path)
    (rule,) = [r for r in contract.schema().rules if r.source == "sql"]
    assert rule.args[0].startswith(  # `/` is a DOUBLE division, as in DuckDB (a CASE of 1 / 0 cannot leave Int64)
        "SELECT CAST(100.0 * SUM(CASE WHEN amount > 10 THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) FROM orders"
    )
    df = pl.DataFrame({"amount": [1.0, 20.0, 30.0, 5.0], "email": ["a@x", "b@x", "c@x", "d@x"]})
    (check,) = [c for c in contract.validate(df).checks if c.name == rule.name]
    assert check.error is None and check.value == pytest.approx(50.0) and not check.passed


V302 = """\
apiVersion: v3.0.2
kind: DataContract
id: urn:test:v302
version: 1.0.0
status: active
schema:
  - name: orders
    properties:
      - name: amount
        logicalType: number
        logicalTypeOptions: {minimum: 0, exclusiveMinimum: true, maximum: 100, exclusiveMaximum: false}
      - name: qty
        logicalType: integer
        logicalTypeOptions: {minimum: 1}
"""


def test_v302_contract_is_checked_against_its_own_schema(tmp_path: Path) -> None:
    path = tmp_path / "v302.yaml"
    path.write_text(V302)
    assert lint_contract(path) == []
    rules = {r.name: r for r in load_contract(path).schema().rules}
    assert (rules["amount:exclusiveMinimum"].check, rules["amount:maximum"].check) == (
        "greater_than(0)",
        "less_than_or_equal_to(100)",
    )
    assert rules["qty:minimum"].check == "greater_than_or_equal_to(1)"
    # the same document as v3.1.0 breaks that version's schema (exclusiveMinimum is a number there)
    v310 = tmp_path / "v310.yaml"
    v310.write_text(V302.replace("v3.0.2", "v3.1.0"))
    findings = lint_contract(v310)
    assert findings and all("exclusiveM" in f.message for f in findings), findings
    assert findings[0].line == 11


def test_v302_documents_using_v31_constructs_are_read_with_the_v31_schema(tmp_path: Path) -> None:
    path = tmp_path / "v302-31.yaml"
    path.write_text(
        V302.replace("logicalType: integer", "logicalType: timestamp")
        .replace("{minimum: 1}", "{minimum: 2020-01-01}")
        .replace(", exclusiveMinimum: true, maximum: 100, exclusiveMaximum: false", "")
        + "    quality:\n      - {metric: rowCount, mustBeGreaterThan: 0}\n"
    )
    assert lint_contract(path) == []


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (HEADER + "? [a, b]\n: c\n", 6, "mapping key must be a plain string"),
        (HEADER + "id: again\n", 6, "duplicate key 'id'"),
        (HEADER + "1: 2\n", 6, "unknown field '1'"),
    ],
    ids=["complex-key", "duplicate-key", "int-key"],
)
def test_odd_yaml_keys_are_file_line_errors(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(text)
    refused(path, line, fragment)
