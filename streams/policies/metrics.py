"""What a response policy can watch: the metric catalog, and one window's observation of a stream.

A policy's condition names a metric of this catalog (``docs/policies.md`` has the table). The
metrics of the window verdicts (``rule.*``, ``window.*``) are read from the observation's own
fields; the others (drift, schema drift, confidence, performance, freshness, lag) from its
``metrics`` map, keyed ``"<metric>"`` or ``"<metric>:<subject>"`` (the field or the
``model_version``), which the adapters of those events fill.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

__all__ = ["METRICS", "Metric", "Needs", "Observation", "RuleOutcome", "ValueKind"]


class ValueKind(enum.StrEnum):
    RATE = "rate"  # a share in [0, 1]
    COUNT = "count"  # a whole number >= 0
    NUMBER = "number"  # any number
    BOOLEAN = "boolean"  # true or false: the condition holds when true


class Needs(enum.StrEnum):
    NOTHING = "nothing"
    RULE = "rule"  # a rule name of the schema object
    FIELD = "field"  # a property of the schema object
    FIELD_OPTIONAL = "field?"
    MODEL_OPTIONAL = "model_version?"


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    kind: ValueKind
    needs: Needs
    description: str
    source: str  # the event that carries it


def _m(name: str, kind: ValueKind, needs: Needs, description: str, source: str) -> tuple[str, Metric]:
    return name, Metric(name, kind, needs, description, source)


_WINDOW = "window.summary"
_DRIFT = "distribution.drift"
_CONF = "prediction.confidence"
_PERF = "model.performance"

#: Every metric a policy condition may name.
METRICS: Final[dict[str, Metric]] = dict(
    [
        _m("rule.failure_rate", ValueKind.RATE, Needs.RULE, "share of the window's records failing the rule", _WINDOW),
        _m("rule.failures", ValueKind.COUNT, Needs.RULE, "records failing the rule in the window", _WINDOW),
        _m("rule.failed", ValueKind.BOOLEAN, Needs.RULE, "the rule's verdict on the window is failed", _WINDOW),
        _m("window.failed", ValueKind.BOOLEAN, Needs.NOTHING, "an error-severity rule failed on the window", _WINDOW),
        _m("window.records", ValueKind.COUNT, Needs.NOTHING, "records in the window", _WINDOW),
        _m("window.invalid_rate", ValueKind.RATE, Needs.NOTHING, "quarantined / records", _WINDOW),
        _m("window.dead_letter_rate", ValueKind.RATE, Needs.NOTHING, "dead-lettered / records", _WINDOW),
        _m("window.late_rate", ValueKind.RATE, Needs.NOTHING, "late records / records", _WINDOW),
        _m("schema_drift.records", ValueKind.COUNT, Needs.FIELD_OPTIONAL,
           "records with an unknown, missing or mistyped field (that field, if named)", "schema.drift"),
        _m("drift.psi", ValueKind.NUMBER, Needs.FIELD, "population stability index vs the reference", _DRIFT),
        _m("drift.js", ValueKind.NUMBER, Needs.FIELD, "Jensen-Shannon distance vs the reference", _DRIFT),
        _m("drift.wasserstein", ValueKind.NUMBER, Needs.FIELD, "normalised Wasserstein distance", _DRIFT),
        _m("drift.ks", ValueKind.NUMBER, Needs.FIELD, "Kolmogorov-Smirnov statistic", _DRIFT),
        _m("drift.chi2", ValueKind.NUMBER, Needs.FIELD, "chi-squared statistic (categoricals)", _DRIFT),
        _m("drift.null_rate_change", ValueKind.NUMBER, Needs.FIELD, "null rate minus the reference's", _DRIFT),
        _m("drift.out_of_range_share", ValueKind.RATE, Needs.FIELD, "share outside the reference range", _DRIFT),
        _m("confidence.mean", ValueKind.NUMBER, Needs.MODEL_OPTIONAL, "mean prediction confidence", _CONF),
        _m("confidence.mean_change", ValueKind.NUMBER, Needs.MODEL_OPTIONAL,
           "(mean - reference mean) / reference mean: -0.2 is 20% below the reference", _CONF),
        _m("confidence.low_share", ValueKind.RATE, Needs.MODEL_OPTIONAL, "share below the confidence threshold", _CONF),
        _m("performance.accuracy", ValueKind.RATE, Needs.MODEL_OPTIONAL, "realized accuracy", _PERF),
        _m("performance.precision", ValueKind.RATE, Needs.MODEL_OPTIONAL, "realized precision", _PERF),
        _m("performance.recall", ValueKind.RATE, Needs.MODEL_OPTIONAL, "realized recall", _PERF),
        _m("performance.roc_auc", ValueKind.RATE, Needs.MODEL_OPTIONAL, "realized ROC AUC", _PERF),
        _m("performance.calibration_error", ValueKind.RATE, Needs.MODEL_OPTIONAL, "expected calibration error", _PERF),
        _m("performance.estimated_accuracy", ValueKind.RATE, Needs.MODEL_OPTIONAL,
           "accuracy estimated from scores without labels (CBPE, the confidence event's expected_accuracy)", _CONF),
        _m("freshness.seconds", ValueKind.NUMBER, Needs.NOTHING,
           "age of the newest record's event time when the window closed", _WINDOW),
        _m("lag.records", ValueKind.COUNT, Needs.NOTHING, "consumer lag of the worker group, in records", "metrics"),
        _m("lag.seconds", ValueKind.NUMBER, Needs.NOTHING, "consumer lag of the worker group, in seconds", "metrics"),
    ]
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """One rule's verdict on one window."""

    failures: int
    failure_rate: float | None
    passed: bool
    severity: str = "error"


@dataclass(frozen=True)
class Observation:
    """What is known about one window of one schema object of one contract, as policies read it.

    ``rules``: each rule's outcome on the window; ``metrics``: every other catalog metric, keyed
    ``"drift.psi:amount"``, ``"confidence.mean:v3"``, ``"confidence.mean"``, ``"lag.records"`` ….
    Windows are ``[start, end)`` in event time (``lag.*``: the wall-clock interval of a measurement).
    ``model_version`` says which policies of a per-model metric take it (:meth:`concerns`).
    """

    contract: str
    schema: str
    window_start: datetime
    window_end: datetime
    contract_version: str = ""
    records: int = 0
    quarantined: int = 0
    dead_lettered: int = 0
    late: int = 0
    rules: Mapping[str, RuleOutcome] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    source: str | None = None  # the event type it was read from (a catalog ``Metric.source``); None: any
    #: for ``confidence.*`` / ``performance.*``: the one model version it reports (policies naming that version
    #: take it), or None: every version of the window pooled (policies naming no version take it)
    model_version: str | None = None

    def concerns(self, metric: str, subject: str | None) -> bool:
        """Whether a policy on ``metric`` (of ``subject``) is judged on this observation: a per-model metric's
        policy takes the observations of its own version (or, naming none, the pooled ones) and no other, so
        one version's event never resets (nor replays) the window of another version's policy."""
        if self.source is None or METRICS[metric].needs is not Needs.MODEL_OPTIONAL:
            return True
        return subject == self.model_version

    def value(self, metric: str, subject: str | None = None) -> float | bool | None:
        """The value of a catalog metric on this window; None when the window does not say."""
        family, _, name = metric.partition(".")
        if family == "rule":
            outcome = self.rules.get(subject or "")
            if outcome is None:
                return None
            return {"failure_rate": outcome.failure_rate, "failures": outcome.failures, "failed": not outcome.passed}[
                name
            ]
        if family == "window":
            if name == "failed":
                if not self.rules:
                    return None
                return any(not r.passed and r.severity == "error" for r in self.rules.values())
            if name == "records":
                return self.records
            part = {"invalid_rate": self.quarantined, "dead_letter_rate": self.dead_lettered, "late_rate": self.late}
            return part[name] / self.records if self.records else None
        if subject is not None:
            return self.metrics.get(f"{metric}:{subject}")
        return self.metrics.get(metric)
