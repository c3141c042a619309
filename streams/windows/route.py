"""The routing verdict of a batch on the stream: the engine's report amended by stream time.

The engine judges a batch as a frame: its ``unique`` rules fail every occurrence of a
value repeated *within the batch*. On the stream, routing per record follows
:attr:`~streams.windows.plan.WindowPlan.gating` (row rules), stream uniqueness
(``field_uniqueness`` against the stream's history, :mod:`.unique`) and the event
time (a record without a usable one fails the ``event_time`` rule). :func:`amend`
rewrites ``valid_mask``, ``violations`` and the counts of a report accordingly, so
the pipeline routes, and writes the ``errors.rules`` header, from the amended report.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from streams.validation.report import ValidationReport
from streams.windows.plan import WindowPlan

__all__ = ["EVENT_TIME_RULE", "amend"]

#: The rule a record without a usable event time fails (it is quarantined with it).
EVENT_TIME_RULE = "event_time"


def amend(
    report: ValidationReport,
    plan: WindowPlan,
    valid: np.ndarray,
    unique_fails: Mapping[str, np.ndarray],
    bad_time: np.ndarray,
) -> ValidationReport:
    """``report`` with the stream's verdict: ``valid`` per row, and in ``violations`` the stream-unique
    rules as judged on the stream (not the batch), ``event_time`` where the event time is unusable, and no
    ``duplicateValues`` rule (a window verdict). The result depends on each row alone, not on the rest of
    its batch (``Binding.process_poll`` relies on it)."""
    n = report.rows
    if not n:
        return report
    # judged on the stream (uniqueness) or on the window (``duplicateValues``), never on the batch: the batch's
    # verdicts of these rules depend on how the stream was cut, so no record's violations keep them
    batch_only = sorted(plan.not_gating_on_stream & _named(report))
    violations = report.violations
    if batch_only:
        violations = violations.list.eval(pl.element().filter(~pl.element().is_in(batch_only)))
    flags = [(name, np.asarray(f, dtype=bool)) for name, f in sorted(unique_fails.items())]
    flags.append((EVENT_TIME_RULE, np.asarray(bad_time, dtype=bool)))
    touched = np.flatnonzero(np.logical_or.reduce([f for _, f in flags]))
    if len(touched):  # few rows: the appended names are built for them only
        added = pl.Series([[name for name, f in flags if f[i]] for i in touched], dtype=pl.List(pl.String))
        at = np.zeros(n, dtype=np.int64)
        at[touched] = np.arange(len(touched))
        hit = np.zeros(n, dtype=bool)
        hit[touched] = True
        both = pl.DataFrame({"v": violations, "e": added.gather(at), "t": hit})
        violations = both.select(pl.when("t").then(pl.concat_list("v", "e")).otherwise("v")).to_series()
    if not batch_only and not len(touched) and np.array_equal(report.valid_mask.to_numpy(), valid):
        return report
    mask = pl.Series("valid", np.asarray(valid, dtype=bool))
    valid_rows = int(mask.sum())
    ignored = sorted(plan.not_gating_on_stream)
    gating = report.gating().list.eval(pl.element().filter(~pl.element().is_in(ignored)))
    if len(touched):
        both = pl.DataFrame({"g": gating, "e": added.gather(at), "t": hit})
        gating = both.select(pl.when("t").then(pl.concat_list("g", "e")).otherwise("g")).to_series()
    empty = pl.lit([], dtype=pl.List(pl.String))
    gating = (
        pl.DataFrame({"g": gating, "ok": mask})
        .select(pl.when("ok").then(empty).otherwise(pl.col("g")).alias("violations"))
        .to_series()
    )
    return report.replace(valid_mask=mask, violations=violations.alias("violations"), valid_rows=valid_rows,
                   invalid_rows=n - valid_rows, gating_violations=gating)  # fmt: skip


def _named(report: ValidationReport) -> set[str]:
    """Rule names appearing in the report's violations."""
    if not report.rows:
        return set()
    return set(report.violations.explode().drop_nulls().unique().to_list())
