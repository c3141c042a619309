"""Wrong-typed values as failures of the ``dtype`` rule: the decoder's mismatches merged into the engine's report.

The verdict of a rule (its metric against its threshold) belongs to the validation layer:
:func:`streams.validation.failures.row_rule_metric` is the one definition, used here for a
row rule whose failure count grew.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from streams.contracts.model import Op, Rule, SchemaObject, Severity
from streams.validation.engine import plan_rules
from streams.validation.failures import row_rule_metric
from streams.validation.report import FAILURE_CASE_SCHEMA, CheckResult, ValidationReport
from streams.validation.rowlists import RuleLists

__all__ = ["merge_mismatches", "row_failures", "row_rule_verdict"]


def row_rule_verdict(rule: Rule, failures: int, rows: int) -> tuple[float, bool]:
    """``(metric, passed)`` of a row rule failing on ``failures`` of ``rows`` rows (the validation layer's formula)."""
    metric = row_rule_metric(rule, failures, rows)
    return metric, rule.threshold.allows(metric)


def row_failures(violations: pl.Series | RuleLists, rules: frozenset[str]) -> dict[str, int]:
    """``{rule: records failing it}`` of the ``rules`` named in a report's ``violations`` (one list per record; or
    as kept, :meth:`ValidationReport.row_lists`: the rows of each code counted, not gathered)."""
    if isinstance(violations, RuleLists):
        if not violations.gathered:
            return _code_failures(violations, rules)
        violations = violations.series()
    if not violations.list.len().sum():
        return {}
    counts = violations.explode().drop_nulls().value_counts(sort=True)
    return {str(name): int(n) for name, n in counts.iter_rows() if name in rules}


def _code_failures(lists: RuleLists, rules: frozenset[str]) -> dict[str, int]:
    """:func:`row_failures` from the rows' codes: the records of each code present, added to its rules."""
    counts = np.bincount(lists.codes, minlength=len(lists.table))
    present = np.flatnonzero(counts)
    out: dict[str, int] = {}
    for code, names in zip(present.tolist(), lists.table.gather(present).to_list(), strict=True):
        for name in names:
            if name in rules:
                out[name] = out.get(name, 0) + int(counts[code])
    return out


def merge_mismatches(report: ValidationReport, schema_obj: SchemaObject, mismatches: pl.DataFrame) -> ValidationReport:
    """The report with the decoder's wrong-typed values (``Decoded.mismatches``) as failures of ``dtype`` rules.

    Those values reached the engine as nulls, so every other rule already judged
    them as the engine judges a value that does not conform; this adds the
    ``dtype`` failures: the rule's count and verdict, the rows' ``violations``,
    ``gating_violations`` and validity, and one failure case per value (redacted for
    classified fields). As in the engine, a value failing its dtype is not also a null:
    the field's ``not_nullable`` and ``missing_values`` failures on those rows are taken back.
    """
    if mismatches.is_empty():
        return report
    rules = {r.column: r for r in plan_rules(schema_obj) if r.op is Op.DTYPE and r.column is not None}
    per_col = dict(mismatches.group_by("column").len().iter_rows())
    nullness = {
        r.name: r for r in schema_obj.rules if r.op in (Op.NOT_NULL, Op.MISSING) and r.column in per_col
    }  # rules that counted the mismatched (nulled) values as missing
    rows = pl.int_range(report.rows, dtype=pl.UInt32, eager=True)
    frame = pl.DataFrame({"row": rows, "v": report.violations, "g": report.gating()})
    taken: dict[str, int] = {}
    drops: dict[str, np.ndarray] = {}  # rule -> rows whose failure cases are taken back
    for name, null_rule in nullness.items():
        at = mismatches.filter(pl.col("column") == null_rule.column).get_column("row").unique().implode()
        hit = pl.col("row").is_in(at) & pl.col("v").list.contains(name)
        taken[name] = int(frame.select(hit.sum()).item())
        frame = frame.with_columns(
            pl.when(hit).then(pl.col(c).list.set_difference(pl.lit([name]))).otherwise(pl.col(c)).alias(c)
            for c in ("v", "g")
        )
        drops[name] = at.explode().to_numpy()
    checks: list[CheckResult] = []
    for c in report.checks:
        rule = rules.get(c.column) if c.column is not None else None
        if c.name in nullness and taken.get(c.name):
            failures = c.failures - taken[c.name]
            value, passed = row_rule_verdict(nullness[c.name], failures, report.rows)
            rate = failures / report.rows if report.rows else 0.0
            checks.append(replace(c, failures=failures, failure_rate=rate, passed=passed, value=value))
            continue
        if rule is None or rule.name != c.name or c.column not in per_col:
            checks.append(c)
            continue
        assert c.column is not None
        failures = c.failures + int(per_col[c.column])
        value, allowed = row_rule_verdict(rule, failures, report.rows)
        passed = allowed and c.column not in report.missing_columns
        rate = failures / report.rows if report.rows else 0.0
        checks.append(replace(c, failures=failures, failure_rate=rate, passed=passed, value=value))
    rule_of = {k: r.name for k, r in rules.items()}
    gates = {r.name for r in rules.values() if r.gates_rows}
    named = mismatches.with_columns(pl.col("column").replace_strict(rule_of, return_dtype=pl.String).alias("rule"))
    extra = named.group_by("row").agg(
        pl.col("rule").alias("dv"), pl.col("rule").filter(pl.col("rule").is_in(list(gates))).alias("dg")
    )
    empty = pl.lit([], dtype=pl.List(pl.String))
    joined = frame.join(extra, on="row", how="left", maintain_order="left").select(
        pl.concat_list("v", pl.col("dv").fill_null(empty)).alias("violations"),
        pl.concat_list("g", pl.col("dg").fill_null(empty)).alias("gating"),
    )
    violations, gating = joined.get_column("violations"), joined.get_column("gating")
    valid = (gating.list.len() == 0).alias(report.valid_mask.name)
    cases = named.select(
        failure_case=pl.col("value"),
        schema_context=pl.lit("Column"),
        column=pl.col("column"),
        check=pl.col("column").replace_strict({k: r.check for k, r in rules.items()}, return_dtype=pl.String),
        check_number=pl.lit(None, dtype=pl.Int32),
        index=pl.col("row").cast(pl.Int32),
        rule=pl.col("rule"),
    ).cast(dict(FAILURE_CASE_SCHEMA.items()))
    kept = report.cases.without(drops) if nullness else report.cases  # not rendered: see FailureCases
    valid_rows = int(valid.sum())
    return replace(
        report,
        checks=tuple(checks),
        valid_mask=valid,
        violations=violations,
        gating_violations=gating,
        failure_cases=kept.then(cases),
        valid_rows=valid_rows,
        invalid_rows=report.rows - valid_rows,
        passed=all(c.passed for c in checks if c.severity is Severity.ERROR),
    )
