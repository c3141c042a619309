"""Lint dry-runs every rule on the engine: a rule that cannot run is a file:line lint error, not a silent pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.lint import lint_file, sample_frame

ROOT = Path(__file__).resolve().parents[3]
HEADER = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:dry-run
version: 1.0.0
status: draft  # lint requires an owner and a support channel for contracts in use (issue 12)
schema:
  - name: orders
    properties:
      - {name: amount, logicalType: number}
      - {name: n, logicalType: integer}
      - {name: email, logicalType: string}
      - {name: at, logicalType: timestamp, logicalTypeOptions: {timezone: true, defaultTimezone: Europe/Paris}}
      - name: code
        logicalType: string
        quality:
"""
LINE = 16  # the line of the rule appended below


def lint_rule(tmp_path: Path, rule: str) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(HEADER + "          - " + rule + "\n")
    return [f"{f.line}: {f.message}" for f in lint_file(path) if not f.note]


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ('{type: custom, engine: pandera, implementation: "Check.isin([1, 2])"}', "1 is not text"),
        ('{type: custom, engine: pandera, implementation: "Check.greater_than(5)"}', "cannot compare string"),
        ("{type: custom, engine: pandera, implementation: \"Check.str_matches('(?<=a)b')\"}", "look-around"),
        ('{type: custom, engine: pandera, implementation: "Check.less_than(2 ** 70)"}', "is not a literal"),
        ('{type: custom, engine: pandera, implementation: "Check.le(99999999999999999999)"}', "64-bit range"),
        ("{type: custom, engine: expression, implementation: 'email > 3'}", "cannot compare string"),
        ("{type: custom, engine: expression, implementation: 'amount + nope > 3'}", "unknown properties: nope"),
        ("{type: sql, query: 'SELECT MAX(email) FROM orders', mustBe: 0}", "not a number"),
        ("{type: sql, query: 'SELECT COUNT(*) FROM orders WHERE email > 5', mustBe: 0}", "cannot compare string"),
        ("{type: sql, query: 'SELECT COUNT(*) FROM orders WHERE emial IS NULL', mustBe: 0}", "unknown columns: emial"),
        ("{type: sql, query: 'SELECT COUNT(*) FROM customers', mustBe: 0}", "relation 'customers'"),
        ("{type: sql, query: 'SELECT COUNT(*) FROM orders; DELETE FROM orders', mustBe: 0}", "exactly one SELECT"),
        ("{type: sql, query: \"SELECT COUNT(*) FROM orders WHERE code ~ '(a)\\\\1'\", mustBe: 0}", "backreference"),
    ],
    ids=[
        "isin-ints-on-string",
        "string-vs-number",
        "lookbehind",
        "non-literal",
        "beyond-int64",
        "expression-string-vs-number",
        "expression-unknown-column",
        "sql-non-numeric",
        "sql-string-vs-number",
        "sql-unknown-column",
        "sql-unknown-relation",
        "sql-two-statements",
        "sql-backreference",
    ],
)
def test_rules_that_cannot_run_are_lint_errors(tmp_path: Path, rule: str, fragment: str) -> None:
    problems = lint_rule(tmp_path, rule)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{LINE}: "), problems
    assert fragment in problems[0], problems


@pytest.mark.parametrize(
    "rule",
    [
        "{type: sql, query: 'SELECT AVG(amount) FROM orders WHERE amount > 1000', mustBeLessThan: 5}",
        "{type: sql, query: 'SELECT COUNT(*) FROM ${object} WHERE n > 1', mustBe: 0}",
        "{type: custom, engine: pandera, implementation: \"Check.str_matches(r'^\\\\p{L}+$')\"}",
        '{type: custom, engine: expression, implementation: \'amount <= 10 * n and code in ["a", "b"]\'}',
        "{metric: invalidValues, arguments: {validValues: [a, b]}, mustBeLessThan: 5, unit: percent}",
        "{type: sql, query: 'SELECT MEDIAN(amount) + TRY_CAST(MAX(code) AS INT) FROM orders', mustBeLessThan: 5}",
        "{type: sql, query: \"SELECT COUNT(*) FROM orders WHERE REGEXP_LIKE(code, '^a') "
        "AND SUBSTRING(email, 1, 1) = 'a'\", mustBe: 0}",
        "{type: sql, query: 'SELECT COUNT(*) FILTER (WHERE n > 1) FROM orders WHERE n IN "
        "(SELECT n FROM orders GROUP BY n HAVING COUNT(*) > 1)', mustBe: 0}",
    ],
    ids=[
        "sql-null-aggregate",
        "sql-count",
        "unicode-class",
        "expression",
        "valid-values",
        "sql-median-try-cast",
        "sql-regex-substring",
        "sql-filter-subquery",
    ],
)
def test_rules_that_run_lint_clean(tmp_path: Path, rule: str) -> None:
    assert lint_rule(tmp_path, rule) == []


def test_cli_lint_reports_dry_run_failures_and_the_examples_are_clean(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["contracts", "lint", str(ROOT / "contracts")])
    assert ok.exit_code == 0, ok.output
    path = tmp_path / "c.yaml"
    path.write_text(HEADER + "          - {type: sql, query: 'SELECT MAX(email) FROM orders', mustBe: 0}\n")
    res = runner.invoke(app, ["contracts", "lint", str(path)])
    assert res.exit_code == 1
    assert f"{path}:{LINE}: rule 'code:sql#0' cannot run on the engine" in res.stdout


def test_sample_frame_has_the_schema_dtypes() -> None:
    from streams.contracts.loader import parse_contract

    schema = parse_contract(HEADER + "          - {metric: nullValues, mustBe: 0}\n").schema()
    frame = sample_frame(schema)
    assert frame.schema == schema.polars_schema and frame.height == 2 and frame.null_count().sum_horizontal()[0] == 0


@pytest.mark.parametrize(
    ("topic", "fragment"),
    [
        ("dq.quality-events.v1", "quality-events topic"),
        ("shop.orders.v1.quarantine", "output topic"),
        ("shop.orders.v1.validated", "output topic"),
        ("shop.orders.v1.dlq", "output topic"),
    ],
)
def test_contracts_bound_to_the_workers_own_topics_are_lint_errors(tmp_path: Path, topic: str, fragment: str) -> None:
    path = tmp_path / "c.yaml"
    text = HEADER.replace("  - name: orders\n", f"  - name: orders\n    physicalName: {topic}\n")
    path.write_text(text + "          - {metric: nullValues, mustBe: 0}\n")
    problems = [f for f in lint_file(path) if not f.note]
    assert [f.line for f in problems] == [7], problems
    assert fragment in problems[0].message and "in a loop" in problems[0].message
