"""Response policies declared in a contract: schema-level ``customProperties`` ``qstreams.policies``.

Parsed into frozen :class:`Policy` objects; every mistake (an unknown key, rule, field, metric
or action, a bad duration, a threshold on the wrong side) is a ``file:line`` finding, all of
them at once for lint (:func:`policy_findings`), the first as a
:class:`~streams.errors.ContractSchemaError` for a worker (:func:`parse_policies`). The schema
is documented in ``docs/policies.md``.
"""

from __future__ import annotations

import difflib
import enum
import math
import re
from dataclasses import dataclass
from typing import Any, Final

from streams.contracts.model import Contract, SchemaObject
from streams.contracts.odcs_schema import Finding
from streams.contracts.source import Path_
from streams.contracts.stream import DurationError
from streams.contracts.stream import parse_duration as stream_duration
from streams.errors import ContractSchemaError
from streams.policies.metrics import METRICS, Needs, ValueKind

__all__ = [
    "POLICIES_KEY",
    "Action",
    "Condition",
    "Policy",
    "PolicySeverity",
    "parse_duration",
    "parse_policies",
    "policy_findings",
]

#: The schema-level custom property that holds a schema object's policies.
POLICIES_KEY: Final = "qstreams.policies"


class Action(enum.StrEnum):
    NOTIFY = "notify"
    PAGE = "page"
    QUARANTINE_STREAM = "quarantine-stream"
    RETRAIN_CANDIDATE = "retrain-candidate"
    ROLLBACK_CANDIDATE = "rollback-candidate"


class PolicySeverity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Condition:
    """``metric`` (of :data:`~streams.policies.metrics.METRICS`) on ``subject`` compared with a threshold.

    ``comparator`` is ``above`` or ``below`` (None for a boolean metric, which holds when true).
    """

    metric: str
    subject: str | None = None
    comparator: str | None = None
    threshold: float | None = None

    def holds(self, value: float | bool | None) -> bool | None:
        """True / False on a window, None when the window has no value for the metric."""
        if value is None:
            return None
        if self.comparator is None:
            return bool(value)
        assert self.threshold is not None
        return float(value) > self.threshold if self.comparator == "above" else float(value) < self.threshold

    def describe(self) -> str:
        target = f"{self.metric}[{self.subject}]" if self.subject else self.metric
        return target if self.comparator is None else f"{target} {self.comparator} {self.threshold:g}"


@dataclass(frozen=True, slots=True)
class Policy:
    """One response policy of one schema object of a contract."""

    name: str
    contract: str
    schema: str
    condition: Condition
    windows: int = 1  # `for`: consecutive windows the condition must hold
    severity: PolicySeverity = PolicySeverity.WARNING
    action: Action = Action.NOTIFY
    model_version: str | None = None
    cooldown_seconds: float = 0.0
    resolve_after: int = 1  # consecutive clear windows that resolve the incident
    resolve_condition: Condition | None = None  # None: clear when the trigger condition does not hold
    description: str | None = None
    line: int | None = None

    @property
    def key(self) -> str:
        """``<contract id>#<policy name>``: the incident key (one open incident per key)."""
        return f"{self.contract}#{self.name}"

    def clear(self, value: float | bool | None) -> bool | None:
        """Whether a window counts towards resolving an open incident (None: the window does not say)."""
        if self.resolve_condition is not None:
            return self.resolve_condition.holds(value)
        held = self.condition.holds(value)
        return None if held is None else not held

    def as_dict(self) -> dict[str, Any]:
        """The policy as quality events carry it."""
        return {
            "name": self.name,
            "description": self.description,
            "condition": self.condition.describe(),
            "metric": self.condition.metric,
            "subject": self.condition.subject,
            "for": self.windows,
            "severity": str(self.severity),
            "action": str(self.action),
            "model_version": self.model_version,
            "cooldown_seconds": self.cooldown_seconds,
            "resolve_after": self.resolve_after,
            "resolve_condition": self.resolve_condition.describe() if self.resolve_condition else None,
        }


def parse_duration(text: Any) -> float | None:
    """Seconds in a duration such as ``30s``, ``5m``, ``1h30m``, ``2d``; None when it is not one.

    The contracts' duration reader (:func:`streams.contracts.stream.parse_duration`) with a unit required.
    """
    try:
        return stream_duration(text, require_unit=True) / 1000
    except DurationError:
        return None


_POLICY_KEYS = (
    "name", "description", "when", "for", "severity", "action", "model_version", "cooldown", "resolve",
)  # fmt: skip
_WHEN_KEYS = ("metric", "rule", "field", "model_version", "above", "below")
_RESOLVE_KEYS = ("after", "above", "below")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class _Problems:
    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.path = contract.path or "<contract>"
        self.findings: list[Finding] = []

    def add(self, message: str, where: Path_) -> None:
        doc = self.contract.document
        self.findings.append(Finding(self.path, doc.line(where) if doc is not None else None, message))

    def keys(self, node: dict[str, Any], allowed: tuple[str, ...], where: Path_, what: str) -> None:
        for key in node:
            if key not in allowed:
                guess = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                hint = f" (did you mean {guess[0]!r}?)" if guess else ""
                self.add(f"unknown key {key!r} in {what}{hint}; allowed: {', '.join(allowed)}", (*where, key))


def _choice(value: Any, choices: list[str] | list[Action] | list[PolicySeverity], what: str) -> str:
    options = [str(c) for c in choices]
    guess = difflib.get_close_matches(str(value), options, n=1, cutoff=0.6)
    hint = f"; did you mean {guess[0]!r}?" if guess else ""
    return f"unknown {what} {value!r}{hint} (one of {', '.join(options)})"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _windows(value: Any, where: Path_, p: _Problems, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value > 10_000:
        p.add(f"{what} must be a whole number of windows between 1 and 10000, got {value!r}", where)
        return 1
    return value


def _condition(when: Any, where: Path_, schema: SchemaObject, p: _Problems) -> Condition | None:
    if not isinstance(when, dict):
        p.add("`when` must be a mapping with a `metric` (and its rule, field or threshold)", where)
        return None
    p.keys(when, _WHEN_KEYS, where, "a policy's `when`")
    metric = METRICS.get(str(when.get("metric")))
    if metric is None:
        p.add(_choice(when.get("metric"), sorted(METRICS), "metric"), (*where, "metric"))
        return None
    subject: str | None = None
    rule_names = [r.name for r in schema.rules]
    if metric.needs is Needs.RULE:
        subject = when.get("rule")
        if subject is None:
            p.add(f"metric {metric.name} needs `rule:` (a rule of schema object {schema.name!r})", where)
        elif subject not in rule_names:
            p.add(_choice(subject, rule_names, f"rule of schema object {schema.name!r}:"), (*where, "rule"))
        elif metric.name != "rule.failed" and next(r for r in schema.rules if r.name == subject).is_batch_metric:
            p.add(f"rule {subject!r} is a batch metric (rowCount, SQL): it has no failing records, use rule.failed",
                  (*where, "metric"))  # fmt: skip
    elif metric.needs in (Needs.FIELD, Needs.FIELD_OPTIONAL):
        subject = when.get("field")
        if subject is None and metric.needs is Needs.FIELD:
            p.add(f"metric {metric.name} needs `field:` (a property of schema object {schema.name!r})", where)
        elif subject is not None and subject not in schema.columns:
            p.add(_choice(subject, list(schema.columns), f"field of schema object {schema.name!r}:"),
                  (*where, "field"))  # fmt: skip
    elif metric.needs is Needs.MODEL_OPTIONAL and when.get("model_version") is not None:
        subject = str(when["model_version"])
    for key, needed in (("rule", Needs.RULE), ("field", Needs.FIELD), ("model_version", Needs.MODEL_OPTIONAL)):
        if key in when and metric.needs is not needed and not (key == "field" and metric.needs is Needs.FIELD_OPTIONAL):
            p.add(f"metric {metric.name} takes no `{key}:`", (*where, key))
    comparator, threshold = _threshold(when, where, metric.kind, metric.name, p)
    return Condition(metric.name, None if subject is None else str(subject), comparator, threshold)


def _threshold(
    node: dict[str, Any], where: Path_, kind: ValueKind, metric: str, p: _Problems, *, resolving: bool = False
) -> tuple[str | None, float | None]:
    given = [k for k in ("above", "below") if k in node]
    if kind is ValueKind.BOOLEAN:
        for k in given:
            p.add(f"metric {metric} is true or false: it takes no `{k}:` (the condition holds when it is true)",
                  (*where, k))  # fmt: skip
        return None, None
    if len(given) != 1:
        p.add(f"metric {metric} needs exactly one of `above:` or `below:` (a number)", where)
        return None, None
    value = _number(node[given[0]])
    if value is None:
        p.add(f"`{given[0]}` must be a number, got {node[given[0]]!r}", (*where, given[0]))
        return None, None
    if kind is ValueKind.RATE and not 0 <= value <= 1:
        p.add(f"metric {metric} is a share between 0 and 1 (1% is 0.01), got {value:g}", (*where, given[0]))
    elif _never(kind, given[0], value):
        what = "the incident would never resolve" if resolving else "the policy would never trigger"
        p.add(f"metric {metric} is never {given[0]} {value:g} (thresholds are strict; it is "
              f"{'a share in [0, 1]' if kind is ValueKind.RATE else 'a count, 0 or more'}): {what}",
              (*where, given[0]))  # fmt: skip
    return given[0], value


def _never(kind: ValueKind, comparator: str, value: float) -> bool:
    """A strict comparison no value of the metric's kind can pass (a share above 1, a count below 0 or 0)."""
    if kind is ValueKind.RATE:
        return value >= 1 if comparator == "above" else value <= 0
    return kind is ValueKind.COUNT and comparator == "below" and value <= 0


def _policy(node: Any, where: Path_, schema: SchemaObject, p: _Problems) -> Policy | None:
    if not isinstance(node, dict):
        p.add("a policy must be a mapping (name, when, for, severity, action, cooldown, resolve)", where)
        return None
    p.keys(node, _POLICY_KEYS, where, "a policy")
    name = node.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        p.add(f"a policy needs a `name` of letters, digits, '.', '_' or '-' (got {name!r})", (*where, "name"))
        name = f"#{where[-1]}"
    condition = _condition(node.get("when"), (*where, "when"), schema, p)
    windows = _windows(node.get("for", 1), (*where, "for"), p, "`for`")
    severity = action = None
    try:
        severity = PolicySeverity(str(node.get("severity", "warning")))
    except ValueError:
        p.add(_choice(node.get("severity"), list(PolicySeverity), "severity"), (*where, "severity"))
    try:
        action = Action(str(node.get("action", "notify")))
    except ValueError:
        p.add(_choice(node.get("action"), list(Action), "action"), (*where, "action"))
    model = node.get("model_version")
    if action is Action.ROLLBACK_CANDIDATE and not model:
        p.add("action rollback-candidate needs `model_version:` (the model version to roll back)", (*where, "action"))
    elif model and action not in (Action.ROLLBACK_CANDIDATE, Action.RETRAIN_CANDIDATE):
        p.add("`model_version` names the model of a rollback-candidate or retrain-candidate action",
              (*where, "model_version"))  # fmt: skip
    cooldown = parse_duration(node.get("cooldown", "0s"))
    if cooldown is None:
        p.add(f"cooldown {node.get('cooldown')!r} is not a duration; write e.g. 30s, 5m, 1h, 1h30m or 2d",
              (*where, "cooldown"))  # fmt: skip
    resolve_after, resolve_condition = windows, None
    resolve = node.get("resolve")
    if resolve is not None:
        rw = (*where, "resolve")
        if not isinstance(resolve, dict):
            p.add("`resolve` must be a mapping (after, and above or below)", rw)
        else:
            p.keys(resolve, _RESOLVE_KEYS, rw, "a policy's `resolve`")
            resolve_after = _windows(resolve.get("after", windows), (*rw, "after"), p, "`resolve.after`")
            if condition is not None and any(k in resolve for k in ("above", "below")):
                kind = METRICS[condition.metric].kind
                comparator, threshold = _threshold(resolve, rw, kind, condition.metric, p, resolving=True)
                resolve_condition = _hysteresis(condition, comparator, threshold, rw, p)
    if condition is None or severity is None or action is None or cooldown is None:
        return None
    return Policy(
        name=name, contract=p.contract.id, schema=schema.name, condition=condition, windows=windows,
        severity=severity, action=action, model_version=str(model) if model else None, cooldown_seconds=cooldown,
        resolve_after=resolve_after, resolve_condition=resolve_condition, description=node.get("description"),
        line=p.contract.document.line(where) if p.contract.document is not None else None,
    )  # fmt: skip


def _hysteresis(
    trigger: Condition, comparator: str | None, threshold: float | None, where: Path_, p: _Problems
) -> Condition | None:
    """The clear condition must lie on the other side of the trigger threshold (or at it)."""
    if comparator is None or threshold is None or trigger.threshold is None:
        return None
    expected = "below" if trigger.comparator == "above" else "above"
    if comparator != expected:
        p.add(
            f"a policy that triggers {trigger.comparator} a threshold resolves `{expected}:` one", (*where, comparator)
        )
        return None
    wrong = threshold > trigger.threshold if expected == "below" else threshold < trigger.threshold
    if wrong:
        p.add(f"resolve {comparator} {threshold:g} overlaps the trigger ({trigger.describe()}): an incident could "
              "resolve while the condition still holds", (*where, comparator))  # fmt: skip
        return None
    return Condition(trigger.metric, trigger.subject, comparator, threshold)


def _collect(contract: Contract) -> tuple[list[Policy], list[Finding]]:
    p = _Problems(contract)
    policies: list[Policy] = []
    data = contract.document.data if contract.document is not None else {}
    by_name = {s.name: s for s in contract.schemas}
    for i, obj in enumerate(data.get("schema") or []):
        schema = by_name.get(str(obj.get("name"))) if isinstance(obj, dict) else None
        if schema is None:
            continue
        for j, prop in enumerate(obj.get("customProperties") or []):
            if not isinstance(prop, dict) or prop.get("property") != POLICIES_KEY:
                continue
            where: Path_ = ("schema", i, "customProperties", j, "value")
            value = prop.get("value")
            if not isinstance(value, list):
                p.add(f"{POLICIES_KEY} must be a list of policies", where)
                continue
            for k, node in enumerate(value):
                policy = _policy(node, (*where, k), schema, p)
                if policy is not None:
                    policies.append(policy)
    seen: set[str] = set()
    for policy in policies:
        if policy.name in seen:
            p.findings.append(Finding(p.path, policy.line, f"two policies are named {policy.name!r} in this contract"))
        seen.add(policy.name)
    return policies, p.findings


def policy_findings(contract: Contract) -> list[Finding]:
    """Every problem in the contract's response policies, as ``file:line`` lint findings."""
    return _collect(contract)[1]


def parse_policies(contract: Contract) -> tuple[Policy, ...]:
    """The contract's response policies; :class:`ContractSchemaError` (``file:line``) at the first problem."""
    policies, findings = _collect(contract)
    if findings:
        first = findings[0]
        more = f" (and {len(findings) - 1} more; run `qstreams contracts lint`)" if len(findings) > 1 else ""
        raise ContractSchemaError(first.message + more, path=first.path, line=first.line)
    return tuple(policies)
