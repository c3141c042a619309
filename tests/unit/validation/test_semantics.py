"""Engine semantics found by outsiders (issue 9) and fail-closed verdicts (issue 8 §2, §6).

Each test names the issue item it covers; each fails on the engine before its fix.
"""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from streams.contracts.loader import parse_contract
from streams.contracts.model import Contract, Op
from streams.events import batch_summary, event_data, rule_violations, validate_event
from streams.lint import lint_file
from streams.validation import compile_plan
from streams.validation.report import REDACTED

START = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
HEADER = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:semantics
version: 1.0.0
status: active
"""


def contract(body: str) -> Contract:
    return parse_contract(HEADER + textwrap.dedent(body))


def cases(report: object, rule: str) -> list[dict[str, object]]:
    frame = report.failure_cases  # type: ignore[attr-defined]
    return [c for c in frame.to_dicts() if c["rule"] == rule]


# --- item 1: a value failing its dtype is not also a null ------------------------------------------

FLIGHTS = """\
schema:
  - name: flights
    properties:
      - {name: dep_time, logicalType: integer, required: true}
      - {name: arr_time, logicalType: integer, required: true}
    quality:
      - name: arrives_after
        type: custom
        engine: expression
        implementation: arr_time >= dep_time
"""


def test_dtype_failure_is_not_counted_as_a_null_and_other_rules_see_valid_values() -> None:
    c = contract(FLIGHTS)
    df = pl.DataFrame({"dep_time": [517.5, None, 900.0, 1000.0], "arr_time": [600.0, 700.0, 800.0, 1100.0]})
    r = c.validate(df)
    assert r.check("dep_time:dtype").failures == 1
    # only the real null is a null: the 517.5 row fails its dtype, not also `required`
    assert r.check("dep_time:required").failures == 1 and [x["index"] for x in cases(r, "dep_time:required")] == [1]
    # the cross-field rule still sees the rows whose values conform (row 2: 800 < 900)
    assert r.check("arrives_after").failures == 1
    assert r.gating().to_list() == [["dep_time:dtype"], ["dep_time:required"], ["arrives_after"], []]


# --- item 2: an optional column absent from the batch ------------------------------------------------


def test_absent_optional_column_passes_and_required_one_fails() -> None:
    c = contract(
        """\
        schema:
          - name: flights
            properties:
              - {name: flight, logicalType: integer, required: true}
              - {name: tailnum, logicalType: string}
        """
    )
    r = c.validate(pl.DataFrame({"flight": [1, 2]}))
    assert r.missing_columns == ("tailnum",)
    assert r.passed and r.check("tailnum:dtype").passed and r.valid_rows == 2 and r.failure_cases.height == 0
    r = c.validate(pl.DataFrame({"tailnum": ["N1", "N2"]}))
    assert not r.passed and not r.check("flight:dtype").passed and r.invalid_rows == 2
    # the pandera reference agrees: an absent optional column is no failure
    c.to_pandera().validate(pl.DataFrame({"flight": [1, 2]}))


# --- item 3: missingValues on a non-string column ---------------------------------------------------


def test_missing_values_on_an_integer_column_counts_nulls_and_listed_values() -> None:
    c = contract(
        """\
        schema:
          - name: t
            properties:
              - name: n
                logicalType: integer
                quality:
                  - metric: missingValues
                    arguments: {missingValues: [null, '', 'N/A', -1]}
                    mustBeLessThan: 3
        """
    )
    r = c.validate(pl.DataFrame({"n": [1, None, -1, 5, None]}))
    check = r.check("n:missingValues")
    assert check.error is None and check.value == 3 and not check.passed


# --- item 4: unique and nulls; duplicateValues counting ---------------------------------------------


def test_unique_ignores_nulls_and_duplicate_values_is_rows_minus_distinct() -> None:
    c = contract(
        """\
        schema:
          - name: t
            properties:
              - {name: email, logicalType: string, unique: true}
              - name: phone
                logicalType: string
                quality:
                  - {metric: duplicateValues, mustBeLessThan: 20, unit: percent}
                  - {name: dups, metric: duplicateValues, mustBeLessThan: 2}
        """
    )
    df = pl.DataFrame(
        {
            "email": ["a", None, None, "b", "c"],
            "phone": ["1", "1", "1", "2", None],
        }
    )
    r = c.validate(df)
    assert r.check("email:unique").passed and r.valid_rows == 5
    # phone: 4 non-null values, 2 distinct -> 2 duplicate values; 2 / 5 rows = 40 %
    assert r.check("phone:duplicateValues").value == pytest.approx(40.0)
    assert not r.check("phone:duplicateValues").passed
    assert r.check("dups").value == 2 and not r.check("dups").passed
    assert r.check("dups").failures == 3  # the rows of the duplicated group


# --- item 5: composite keys ----------------------------------------------------------------------------

COMPOSITE = """\
schema:
  - name: orders
    properties:
      - {name: order_id, logicalType: integer, primaryKey: true, primaryKeyPosition: 2}
      - {name: tenant_id, logicalType: string, primaryKey: true, primaryKeyPosition: 1}
      - {name: line, logicalType: integer}
    quality:
      - name: line_unique
        metric: duplicateValues
        mustBe: 0
        arguments:
          properties: [order_id, line]
"""


def test_composite_primary_key_is_one_rule_over_the_tuple() -> None:
    c = contract(COMPOSITE)
    so = c.schema()
    unique = [r for r in so.rules if r.op is Op.UNIQUE]
    assert [(r.name, r.key_columns) for r in unique] == [
        ("orders:primaryKey", ("tenant_id", "order_id")),
        ("line_unique", ("order_id", "line")),
    ]
    assert all(f.required for f in so.fields if f.primary_key)
    df = pl.DataFrame(
        {"tenant_id": ["a", "b", "a", "a"], "order_id": [1, 1, 2, 1], "line": [1, 2, 3, 4]},
    )
    r = c.validate(df)
    # (a, 1) twice: rows 0 and 3; order_id alone repeats across tenants without failing
    assert r.check("orders:primaryKey").failures == 2 and r.check("orders:primaryKey").value == 1
    assert r.check("line_unique").passed
    assert r.valid_mask.to_list() == [False, True, True, False]
    assert json.loads(str(cases(r, "orders:primaryKey")[0]["failure_case"])) == {"tenant_id": "a", "order_id": 1}
    # the pandera reference flags the same rows
    with pytest.raises(Exception) as info:
        c.to_pandera().validate(df, lazy=True)
    flagged = info.value.failure_cases.filter(
        pl.col("check") == "multiple_fields_uniqueness(['tenant_id', 'order_id'])"
    )  # type: ignore[attr-defined]
    assert sorted(flagged["index"].to_list()) == [0, 3]


def test_schema_level_duplicate_values_lints(tmp_path: Path) -> None:
    path = tmp_path / "c.odcs.yaml"
    draft = HEADER.replace("status: active", "status: draft")  # no owner needed for this check
    path.write_text(draft + COMPOSITE)
    assert [f for f in lint_file(path) if not f.note] == []
    path.write_text(draft + COMPOSITE.replace("[order_id, line]", "[order_id, nope]"))
    [finding] = [f for f in lint_file(path) if not f.note]
    assert "unknown properties: nope" in finding.message and finding.line == 17


# --- item 6: fail closed ----------------------------------------------------------------------------

BROKEN = """\
schema:
  - name: users
    properties:
      - {name: id, logicalType: integer}
      - {name: email, logicalType: string, classification: pii}
      - {name: code, logicalType: string}
    quality:
      - name: code_numeric
        type: sql
        query: SELECT SUM(CAST(code AS INTEGER)) FROM users
        mustBeGreaterThan: 0
      - name: email_sum
        type: sql
        query: SELECT SUM(CAST(email AS INTEGER)) FROM users
        mustBeGreaterThan: 0
      - name: top_email
        type: sql
        query: SELECT MAX(LENGTH(email)) FROM users
        mustBeLessThan: 100
      - name: warn_code
        type: sql
        severity: warning
        query: SELECT SUM(CAST(code AS INTEGER)) FROM users
        mustBeGreaterThan: 0
"""


def users() -> pl.DataFrame:
    return pl.DataFrame({"id": [1, 2], "email": ["bob@example.org", "ann@example.org"], "code": ["12", "x7"]})


def test_a_rule_that_errors_fails_its_rows_closed_with_its_message() -> None:
    c = contract(BROKEN)
    r = c.validate(users())
    check = r.check("code_numeric")
    assert check.error is not None and "x7" in check.error and not check.passed
    assert r.invalid_rows == 2 and r.rule_errors.keys() == {"code_numeric", "email_sum", "warn_code"}
    # the rows fail the error-severity rules that could not run; the warning does not gate
    assert r.gating().to_list() == [["code_numeric", "email_sum"]] * 2
    assert r.to_dict()["checks"][3]["error"] == check.error
    lenient = compile_plan(c, on_rule_error="pass").validate(users())
    assert lenient.valid_rows == 2 and lenient.check("code_numeric").error == check.error


def test_gating_violations_leave_out_non_gating_rules() -> None:
    c = contract(
        """\
        schema:
          - name: t
            properties:
              - name: x
                logicalType: integer
                logicalTypeOptions: {minimum: 0}
                quality:
                  - {name: few_big, metric: invalidValues, arguments: {validValues: [-1, 7, 1]},
                     mustBeLessThan: 50, unit: percent}
                  - {name: warn_big, metric: invalidValues, arguments: {validValues: [-1, 11, 1]},
                     severity: warning, mustBe: 0}
        """
    )
    r = c.validate(pl.DataFrame({"x": [-1, 7, 11, 1]}))
    assert r.check("few_big").passed and not r.check("warn_big").passed
    assert r.violations.to_list() == [["x:minimum"], ["warn_big"], ["few_big"], []]
    assert r.gating().to_list() == [["x:minimum"], [], [], []]
    assert r.gating_violations is not None and r.gating_violations.to_list() == r.gating().to_list()


# --- item 7: redaction of SQL results and errors over classified columns ----------------------------


def test_sql_results_and_errors_over_classified_columns_are_redacted() -> None:
    c = contract(BROKEN)
    r = c.validate(users())
    text = json.dumps(r.to_dict()) + repr(r.checks)
    assert "bob@example.org" not in text and "ann@example.org" not in text
    assert r.check("email_sum").error == (
        f"InvalidOperationError: {REDACTED} (the message may carry values of classified column(s) email)"
    )
    top = r.check("top_email")
    assert top.value is None and top.passed  # the verdict is kept, the value is not shown
    # a bare COUNT over a classified column carries no value: shown
    counted = contract(BROKEN.replace("SELECT MAX(LENGTH(email))", "SELECT COUNT(email)")).validate(users())
    assert counted.check("top_email").value == 2


def test_rule_violation_events_carry_the_redacted_error_and_validate() -> None:
    c = contract(BROKEN)
    so = c.schema()
    r = c.validate(users())
    events = rule_violations(
        c, so, r, source_topic=so.topic, offsets={0: (0, 1)}, window_start=START, window_end=START,
        sample_size=5, worker_id="w",
    )  # fmt: skip
    by_rule = {e.get_extension("rule"): event_data(e) for e in events}
    assert by_rule["code_numeric"]["error"] == r.check("code_numeric").error
    assert by_rule["email_sum"]["error"].startswith(f"InvalidOperationError: {REDACTED}")
    assert "bob@example.org" not in json.dumps([event_data(e) for e in events])
    for e in events:
        validate_event(e)


# --- item 8: the owners in events ---------------------------------------------------------------------


def test_owner_roles_name_the_owning_team_and_owner_members() -> None:
    c = contract(
        """\
        team:
          name: data-platform
          members:
            - {username: ada, role: owner}
            - {username: grace, role: Data Steward}
            - {username: bob, role: owner, dateOut: "2020-01-01"}
            - {username: eve, role: Owner}
        roles:
          - {role: fraud-model-consumer, access: read}
        schema:
          - name: t
            properties:
              - {name: id, logicalType: integer}
        """
    )
    assert c.owner.roles == ("data-platform", "ada", "eve")
    assert c.owner.members == ("ada", "grace", "bob", "eve")
    so = c.schema()
    event = batch_summary(
        c, so, c.validate(pl.DataFrame({"id": [1]})), source_topic=so.topic, offsets={0: (0, 0)},
        window_start=START, window_end=START, counts={"valid": 1}, worker_id="w", latency_seconds=0.1, mode="gate",
    )  # fmt: skip
    assert event_data(event)["owner"]["roles"] == ["data-platform", "ada", "eve"]
    validate_event(event)


def test_rule_errors_are_counted_in_metrics() -> None:
    from streams.observability import Metrics

    r = contract(BROKEN).validate(users())
    metrics = Metrics()
    metrics.observe_batch(
        contract_id="urn:test:semantics", topic="users", messages=2, counts={"quarantined": 2},
        rule_failures={}, severities={}, decode_seconds=0.0, validate_seconds=0.0, rule_errors=r.rule_errors,
    )  # fmt: skip
    text = metrics.render().decode()
    assert 'qstreams_rule_errors_total{contract="urn:test:semantics",rule="code_numeric"} 1.0' in text
    assert "bob@example.org" not in text


@pytest.mark.parametrize("n", [3, 12, 70])  # the full table, one code word, several code words
def test_gating_violations_on_every_verdict_path(n: int) -> None:
    from streams.contracts.model import Field, Rule, SchemaObject, Severity, check_label

    rules = tuple(
        Rule(f"r{i}", Op.NE, (i,), check_label(Op.NE, (i,)), "x", Severity.WARNING if i % 2 else Severity.ERROR)
        for i in range(n)
    )
    so = SchemaObject("t", "t", (Field("x", "integer", pl.Int64()),), rules)
    c = Contract("urn:t", "1", "active", "0" * 64, (so,))
    r = c.validate(pl.DataFrame({"x": [*range(n), 1000]}))
    assert r.violations.to_list() == [[f"r{i}"] for i in range(n)] + [[]]
    assert r.gating().to_list() == [[] if i % 2 else [f"r{i}"] for i in range(n)] + [[]]
    assert r.valid_mask.to_list() == [bool(i % 2) for i in range(n)] + [True]
