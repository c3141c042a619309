"""A merged window partial becomes the window's verdict, with the engine's threshold semantics.

Each check is a :class:`~streams.validation.report.CheckResult` computed exactly as
:meth:`streams.validation.failures.Reporter.results` computes a batch's, with the
window's records as the batch: the metric compared with the rule's threshold is the
failing-record count (``unit: rows``) or percentage of the window's decoded records
(``unit: percent``), the window's record count (``rowCount``) or the SQL value; a
batch metric reports ``failures`` 1 when it breaks its threshold. Non-mergeable SQL
rules (``evaluation: batches``) report as ``failures`` and ``value`` the number of
batch slices that broke the threshold, and pass when none did.

When the binding monitors drift (a :class:`~streams.profiles.monitor.DriftMonitor`: the
contract names a ``qstreams.reference``), the verdict also carries :class:`WindowDrift`: the
window's merged profile judged against the reference, per field and per ``model_version``.
A window without rows, or whose profile cannot be judged against the reference (its bins
differ: the reference was replaced while workers ran), is judged on the empty profile, so
every field reads ``insufficient_data``: no verdict, never a false alarm.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streams.contracts.model import Severity
from streams.profiles.drift import DriftReport
from streams.profiles.prediction import ModelDrift
from streams.profiles.profile import Profile
from streams.validation.failures import error_text, row_rule_metric
from streams.validation.report import CheckResult
from streams.windows.partial import FieldTally, Ranges, WindowKey, WindowPartial
from streams.windows.plan import Evaluation, RuleKind, RulePlan, WindowPlan

if TYPE_CHECKING:
    from streams.profiles.monitor import DriftMonitor

__all__ = ["SchemaDrift", "WindowCheck", "WindowDrift", "WindowVerdict", "finalize", "judge_drift", "schema_drift"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WindowDrift:
    """A window's profile against the reference: per field, and per model version for a prediction contract."""

    profile: Profile  # the window's merged profile (what was judged)
    report: DriftReport
    models: tuple[ModelDrift, ...]
    reference_sha256: str
    reference_rows: int
    confidence_threshold: float | None  # of the prediction spec; None for a feature contract


@dataclass(frozen=True, slots=True)
class SchemaDrift:
    """How a window's records drifted from the schema object, with counts and first offending offsets.

    ``unknown``: undeclared fields the records carry; ``missing``: declared fields the records
    lack; ``types``: declared fields whose values had another type (the ``dtype`` rules' failures);
    ``never_present``: declared fields that no decoded record of the window carried.
    """

    unknown: dict[str, FieldTally]
    missing: dict[str, FieldTally]
    types: dict[str, FieldTally]
    never_present: tuple[str, ...]

    @property
    def drifted(self) -> bool:
        return bool(self.unknown or self.missing or self.types)


@dataclass(frozen=True, slots=True)
class WindowCheck:
    """One rule's verdict on a window and what it was judged on."""

    result: CheckResult
    evaluation: Evaluation
    evidence: tuple[tuple[int, int], ...] = ()  # first offending (partition, offset)


@dataclass(frozen=True, slots=True)
class WindowVerdict:
    """The final word on one window: counts and every rule's check."""

    key: WindowKey
    contract_sha256: str
    records: int
    rows: int
    valid: int
    quarantined: int
    dead_lettered: int
    late: int
    skewed: int
    checks: tuple[WindowCheck, ...]
    offsets: dict[int, Ranges]
    drift: WindowDrift | None = None  # when the binding monitors drift
    schema_drift: SchemaDrift | None = None  # None: every record carried exactly the declared fields
    #: newest event time (epoch ms) of the window's own records (None: no record with an event time)
    newest_event_ms: int | None = None
    #: wall clock (epoch ms) at which the window was judged final and its verdict made (None: not given)
    closed_ms: int | None = None
    #: why the window's rules were not judged (None: they were): the contract version that counted its records
    #: could not be loaded (``docs/stream-time.md``, "Contract versions"); its counts stand, it has no checks
    unjudged: str | None = None
    #: every contract text ``(version, sha256)`` a verdict of this window was published for together (this one
    #: included, sorted), set by the stream-time observer: after an upgrade a window has one verdict per text, and
    #: a consumer pooling them knows when it has them all (empty: not known)
    contract_versions: tuple[tuple[str, str], ...] = ()

    @property
    def freshness_seconds(self) -> float | None:
        """How old the window's newest data was when the window was judged: close time − newest event time
        (None when either is unknown). Negative when event times run ahead of the wall clock (within the skew)."""
        if self.newest_event_ms is None or self.closed_ms is None:
            return None
        return (self.closed_ms - self.newest_event_ms) / 1000

    @property
    def passed(self) -> bool:
        """Every error-severity rule passed (never for a window whose rules were not judged)."""
        errors = (c for c in self.checks if c.result.severity is Severity.ERROR)
        return self.unjudged is None and all(c.result.passed for c in errors)

    def check(self, name: str) -> WindowCheck:
        for c in self.checks:
            if c.result.name == name:
                return c
        raise KeyError(name)


def _check(rp: RulePlan, partial: WindowPartial) -> CheckResult:
    rule, rows = rp.rule, partial.rows
    tally = partial.rules.get(rule.name)
    error = tally.error if tally is not None else None
    failures = tally.failures if tally is not None else 0
    metric: float | int | None = None
    measured = None
    if rp.kind is RuleKind.VALUES and rule.name in partial.values:
        failures = partial.values[rule.name].duplicated
        measured = partial.values[rule.name].extra  # judged on rows - distinct, as the engine does
    if error is None:
        if rp.kind is RuleKind.ROW_COUNT:
            metric = rows
        elif rp.kind is RuleKind.SQL:
            assert rp.sql is not None
            state = partial.aggregates.get(rule.name)
            try:
                if state is None:
                    raise ValueError("no partial aggregates were recorded for this window")
                metric = rp.sql.final(state[1])
            except Exception as exc:  # a failing query is a failed check
                error = error_text(exc)
        elif rp.kind is RuleKind.SQL_BATCHES:
            metric = failures
        else:
            metric = row_rule_metric(rule, failures if measured is None else measured, rows)
    if rp.kind is RuleKind.SQL_BATCHES:
        passed = error is None and failures == 0
    else:
        passed = error is None and metric is not None and rule.threshold.allows(metric)
    batch_metric = rp.kind in (RuleKind.ROW_COUNT, RuleKind.SQL)
    if batch_metric:
        failures = int(not passed)
    rate = failures / rows if rows and not rule.is_batch_metric else 0.0
    return CheckResult(
        rule.name,
        rule.column,
        rule.check,
        rule.severity,
        failures,
        rate,
        passed,
        metric,
        rule.threshold.describe(),
        rule.dimension,
        rule.gates_rows,
        error,
    )


def judge_drift(monitor: DriftMonitor, profile: Profile | None) -> WindowDrift:
    """The drift of a window's merged profile (None: no rows were profiled) against the monitor's reference."""
    current = profile if profile is not None else monitor.empty()
    if current.spec_id != monitor.spec.binning_id:
        log.warning("window profile with bins %s, not the reference's %s: judged as no data", current.spec_id,
                    monitor.spec.binning_id)  # fmt: skip
        current = monitor.empty()
    ref = monitor.reference
    prediction = monitor.spec.prediction
    threshold = prediction.confidence_threshold if prediction is not None else None
    return WindowDrift(
        current, monitor.drift(current), monitor.models(current), ref.sha256, ref.profile.rows, threshold
    )


def schema_drift(plan: WindowPlan, partial: WindowPartial, checks: tuple[WindowCheck, ...]) -> SchemaDrift | None:
    """The window's schema drift (None when there is none)."""
    types = {
        str(rp.rule.column): FieldTally(c.result.failures, c.evidence)
        for rp, c in zip(plan.rules, checks, strict=True)
        if rp.rule.op.value == "dtype" and rp.rule.column is not None and c.result.failures
    }
    found = SchemaDrift(
        dict(partial.unknown), dict(partial.missing), dict(sorted(types.items())),
        tuple(n for n, t in partial.missing.items() if partial.rows and t.records >= partial.rows),
    )  # fmt: skip
    return found if found.drifted else None


def finalize(
    plan: WindowPlan, partial: WindowPartial, monitor: DriftMonitor | None = None, *, closed_ms: int | None = None
) -> WindowVerdict:
    """The verdict of a window from the merge of all its partials (and its drift, given a ``monitor``).

    ``closed_ms``: the wall clock (epoch ms) at which the window is judged final, from which its freshness is
    measured (the stream-time observer passes the time of the tick that publishes the verdict).
    """
    c = plan.contract
    if (partial.key.contract_id, partial.key.contract_version, partial.contract_sha256) != (c.id, c.version, c.sha256):
        raise ValueError(f"partial of {partial.key.contract_id}@{partial.key.contract_version} is not for {c.ref}")
    checks = tuple(
        WindowCheck(_check(rp, partial), rp.evaluation, tuple(partial.evidence.get(rp.rule.name, ())))
        for rp in plan.rules
    )
    return WindowVerdict(
        partial.key,
        partial.contract_sha256,
        partial.records,
        partial.rows,
        partial.valid,
        partial.quarantined,
        partial.dead_lettered,
        partial.late,
        partial.skewed,
        checks,
        dict(partial.offsets),
        judge_drift(monitor, partial.profile) if monitor is not None else None,
        schema_drift(plan, partial, checks),
        partial.newest_event_ms,
        closed_ms,
    )
