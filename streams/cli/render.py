"""Human-readable rendering of validation reports with rich."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from streams.validation.report import ValidationReport


def render_report(report: ValidationReport, *, max_cases: int = 20, console: Console | None = None) -> None:
    """Print a report: the verdict, each check with failures, and a sample of failure cases."""
    out = console or Console()
    verdict = "[bold green]PASSED[/]" if report.passed else "[bold red]FAILED[/]"
    out.print(
        f"{verdict}  contract [bold]{report.contract_id}@{report.contract_version}[/] schema [bold]{report.schema}[/]  "
        f"rows {report.rows:,}  valid {report.valid_rows:,}  invalid {report.invalid_rows:,}"
    )
    for name, cols in (("missing", report.missing_columns), ("extra", report.extra_columns)):
        if cols:
            out.print(f"[yellow]{name} columns:[/] {', '.join(cols)}")
    failing = [c for c in report.checks if c.failures or not c.passed]
    table = Table(box=box.SIMPLE_HEAVY, title=f"{len(failing)} of {len(report.checks)} checks with failures")
    for col in ("rule", "severity", "failing rows", "threshold", ""):
        table.add_column(col, justify="right" if col == "failing rows" else "left", no_wrap=col != "threshold")
    for c in failing:
        status = "[green]pass[/]" if c.passed else "[red]FAIL[/]"
        table.add_row(c.name, c.severity, f"{c.failures:,} ({c.failure_rate:.2%})", c.threshold, status)
    if failing:
        out.print(table)
    cases = report.failure_cases.head(max_cases)
    if max_cases and cases.height:
        t = Table(box=box.SIMPLE, title=f"first {cases.height} of {report.failure_cases.height} failure cases")
        for col in ("index", "column", "check", "failure_case"):
            t.add_column(col)
        for row in cases.iter_rows(named=True):
            index = "" if row["index"] is None else str(row["index"])
            t.add_row(index, str(row["column"] or ""), _short(str(row["check"])), _short(str(row["failure_case"]), 60))
        out.print(t)


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
