"""Human-readable rendering of validation reports with rich.

Every failing (or erroring) rule shows what was measured against its threshold: the failing
rows of a row rule (count and share of the batch), the value the threshold is applied to
(rows, or a percentage with ``unit: percent``), the batch metric of a SQL or ``rowCount``
rule, or the error of a rule that could not run. When stdout is not a terminal (CI logs),
nothing is wrapped or truncated.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from streams.validation.report import CheckResult, ValidationReport

#: console width when stdout is not a terminal: wide enough that no CI log line wraps
UNWRAPPED_WIDTH = 10_000
_SYMBOLS = {
    "mustBe": "=",
    "mustNotBe": "≠",
    "mustBeGreaterThan": ">",
    "mustBeGreaterOrEqualTo": "≥",
    "mustBeLessThan": "<",
    "mustBeLessOrEqualTo": "≤",
}
_BATCH_CHECKS = ("sql", "row_count")
#: what ``qstreams validate`` judges: the file as a whole (pandera's semantics), not the stream's records and windows
FILE_SEMANTICS = "file"
FILE_SEMANTICS_NOTE = (
    "File semantics: the file is judged as a whole, as pandera does (uniqueness over all its rows, rowCount, "
    "percent thresholds and SQL rules over the whole file). A stream worker judges per record and per "
    "event-time window instead (docs/semantics.md)."
)


def console_for_stdout() -> Console:
    """A console for stdout: the terminal's width on a TTY, unwrapped otherwise."""
    return Console() if sys.stdout.isatty() else Console(width=UNWRAPPED_WIDTH, soft_wrap=True)


def threshold_text(threshold: str) -> str:
    """``mustBeLessThan 5 percent`` as ``< 5 %``; ``mustBeBetween 1 and 3 rows`` as ``between 1 and 3 rows``."""
    op, _, rest = threshold.partition(" ")
    rest = rest.removesuffix(" percent") + " %" if rest.endswith(" percent") else rest
    if op in ("mustBeBetween", "mustNotBeBetween"):
        return f"{'between' if op == 'mustBeBetween' else 'not between'} {rest}"
    return f"{_SYMBOLS.get(op, op)} {rest}"


def measured_text(check: CheckResult) -> str:
    """The value a rule's threshold was applied to, in the threshold's unit."""
    if check.error is not None:
        return f"error: {check.error}"
    if check.value is None:
        return "[REDACTED]"  # a SQL result over a classified column
    value = float(check.value)
    if check.threshold.endswith(" percent"):
        return f"{value:.4g} %"
    if check.check in _BATCH_CHECKS and check.check != "row_count":
        return f"{value:g}"
    return f"{value:,.0f} rows" if value.is_integer() else f"{value:g} rows"


def _failing_rows(check: CheckResult) -> str:
    if check.check in _BATCH_CHECKS:
        return "batch"
    return f"{check.failures:,} ({check.failure_rate:.2%})"


def render_report(report: ValidationReport, *, max_cases: int = 20, console: Console | None = None) -> None:
    """Print a report: the verdict, each check with failures, and a sample of failure cases."""
    out = console or console_for_stdout()
    wide = not out.is_terminal
    verdict = "[bold green]PASSED[/]" if report.passed else "[bold red]FAILED[/]"
    out.print(
        f"{verdict}  contract [bold]{escape(report.contract_id)}@{escape(report.contract_version)}[/] "
        f"schema [bold]{escape(report.schema)}[/]  "
        f"rows {report.rows:,}  valid {report.valid_rows:,}  invalid {report.invalid_rows:,}  "
        "(file semantics: the file judged as a whole)"
    )
    for name, cols in (("missing", report.missing_columns), ("extra", report.extra_columns)):
        if cols:
            out.print(f"[yellow]{name} columns:[/] {escape(', '.join(cols))}")
    failing = [c for c in report.checks if c.failures or not c.passed]
    table = Table(box=box.SIMPLE_HEAVY, title=f"{len(failing)} of {len(report.checks)} checks with failures")
    for col in ("rule", "severity", "failing rows", "measured", "threshold", ""):
        table.add_column(col, justify="right" if col in ("failing rows", "measured") else "left", no_wrap=not wide)
    for c in failing:
        status = "[red]ERROR[/]" if c.error is not None else "[green]pass[/]" if c.passed else "[red]FAIL[/]"
        table.add_row(
            escape(c.name),
            str(c.severity),
            _failing_rows(c),
            escape(measured_text(c)),
            escape(threshold_text(c.threshold)),
            status,
        )
    if failing:
        out.print(table)
    cases = report.failure_cases.head(max_cases)
    if max_cases and cases.height:
        t = Table(box=box.SIMPLE, title=f"first {cases.height} of {report.failure_cases.height} failure cases")
        for col in ("index", "column", "check", "failure_case"):
            t.add_column(col, no_wrap=not wide)
        for row in cases.iter_rows(named=True):
            index = "" if row["index"] is None else str(row["index"])
            check, value = str(row["check"]), str(row["failure_case"])
            if not wide:
                check, value = _short(check), _short(value, 60)
            t.add_row(index, escape(str(row["column"] or "")), escape(check), escape(value))
        out.print(t)


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
