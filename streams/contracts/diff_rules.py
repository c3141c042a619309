"""``contracts diff`` of quality rules (matched by name): checks, enum values, patterns, thresholds, severity."""

from __future__ import annotations

from collections.abc import Iterator

from streams.contracts.changes import Change, ChangeKind, make_change, pattern_change
from streams.contracts.compare import Relation, bound_relation, combine, multiple_relation, threshold_relation
from streams.contracts.model import Op, Rule, SchemaObject, Severity

__all__ = ["rule_changes"]

_SCHEMA_SOURCES = ("schema", "logicalTypeOptions")
_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


def _gates(rule: Rule) -> bool:
    return rule.severity is Severity.ERROR


def rule_changes(schema: str, old: SchemaObject, new: SchemaObject) -> Iterator[Change]:
    orules = {r.name: r for r in old.rules if r.source not in _SCHEMA_SOURCES}
    nrules = {r.name: r for r in new.rules if r.source not in _SCHEMA_SOURCES}
    for name, r in orules.items():
        if name not in nrules:
            yield Change(ChangeKind.RULE_REMOVED, schema, name, r.check, None, False, _gates(r), r.line,
                         f"{r.severity} rule removed")  # fmt: skip
    for name, r in nrules.items():
        if name not in orules:
            yield Change(ChangeKind.RULE_ADDED, schema, name, None, r.check, _gates(r), False, r.line,
                         f"{r.severity} rule added ({r.check}, {r.threshold.describe()})")  # fmt: skip
        else:
            yield from _one_rule(schema, orules[name], r)


def _one_rule(schema: str, old: Rule, new: Rule) -> Iterator[Change]:
    name, line = new.name, new.line
    gating = _gates(old) or _gates(new)
    if (old.op, old.args, old.column) != (new.op, new.args, new.column):
        yield from _check_change(schema, old, new, gating)
    if old.threshold != new.threshold:
        rel = threshold_relation(old.threshold, new.threshold, batch_metric=new.is_batch_metric)
        if rel is not Relation.SAME:
            kind = {
                Relation.TIGHTENED: ChangeKind.THRESHOLD_TIGHTENED, Relation.LOOSENED: ChangeKind.THRESHOLD_LOOSENED
            }.get(rel, ChangeKind.THRESHOLD_CHANGED)  # fmt: skip
            was, now = old.threshold.describe(), new.threshold.describe()
            yield make_change(kind, schema, name, was, now, rel, line, f"threshold {was} → {now}", gating=gating)
    if old.severity is not new.severity:
        up = _SEVERITY_RANK[new.severity] > _SEVERITY_RANK[old.severity]
        if Severity.ERROR in (old.severity, new.severity):  # the rule starts or stops gating rows
            kind, rel = (ChangeKind.SEVERITY_RAISED, Relation.TIGHTENED) if up else (
                ChangeKind.SEVERITY_LOWERED, Relation.LOOSENED)  # fmt: skip
            yield make_change(kind, schema, name, str(old.severity), str(new.severity), rel, line,
                          f"severity {old.severity} → {new.severity}")  # fmt: skip
        else:
            yield Change(ChangeKind.SEVERITY_CHANGED, schema, name, str(old.severity), str(new.severity), False,
                         False, line, f"severity {old.severity} → {new.severity} (neither gates rows)")  # fmt: skip
    if (old.description or "") != (new.description or ""):
        yield Change(ChangeKind.DESCRIPTION_CHANGED, schema, name, None, None, False, False, line,
                     "the rule's description changed")  # fmt: skip


def _check_change(schema: str, old: Rule, new: Rule, gating: bool) -> Iterator[Change]:
    name, line = new.name, new.line
    same_target = old.op is new.op and old.column == new.column
    if same_target and new.op in (Op.ISIN, Op.NOTIN):
        o, n = frozenset(old.args[0]), frozenset(new.args[0])
        removed, added = o - n, n - o
        if new.op is Op.NOTIN:  # a deny-list: adding values tightens
            removed, added = added, removed
        if removed:
            yield make_change(ChangeKind.ENUM_VALUES_REMOVED, schema, name, sorted(removed, key=str), None,
                          Relation.TIGHTENED, line, f"allowed values removed: {sorted(removed, key=str)}",
                          gating=gating)  # fmt: skip
        if added:
            yield make_change(ChangeKind.ENUM_VALUES_ADDED, schema, name, None, sorted(added, key=str),
                          Relation.LOOSENED, line, f"allowed values added: {sorted(added, key=str)}",
                          gating=gating)  # fmt: skip
        return
    if same_target and new.op in (Op.STR_CONTAINS, Op.STR_MATCHES):
        yield from pattern_change(schema, name, str(old.args[0]), str(new.args[0]), line, gating=gating)
        return
    rel = _bound_rule_relation(old, new) if old.column == new.column else None
    kind = {Relation.TIGHTENED: ChangeKind.RANGE_TIGHTENED, Relation.LOOSENED: ChangeKind.RANGE_LOOSENED}.get(
        rel or Relation.CHANGED, ChangeKind.RULE_CHANGED if rel is None else ChangeKind.RANGE_CHANGED
    )
    yield make_change(kind, schema, name, old.check, new.check, rel or Relation.CHANGED, line,
                  f"check {old.check} → {new.check}", gating=gating)  # fmt: skip


def _bound_rule_relation(old: Rule, new: Rule) -> Relation | None:
    """Bounds of element-wise comparison checks (``Check.ge(0)``, ``Check.in_range(0, 1)``); None otherwise."""
    lower = {Op.GE: False, Op.GT: True}
    upper = {Op.LE: False, Op.LT: True}
    if old.op in lower and new.op in lower:
        return bound_relation((old.args[0], lower[old.op]), (new.args[0], lower[new.op]), lower=True)
    if old.op in upper and new.op in upper:
        return bound_relation((old.args[0], upper[old.op]), (new.args[0], upper[new.op]), lower=False)
    if old.op is not new.op:
        return None
    if new.op is Op.IN_RANGE:
        (olo, ohi, oimin, oimax), (nlo, nhi, nimin, nimax) = old.args, new.args
        return combine(
            bound_relation((olo, not oimin), (nlo, not nimin), lower=True),
            bound_relation((ohi, not oimax), (nhi, not nimax), lower=False),
        )
    if new.op is Op.STR_LENGTH:
        (olo, ohi), (nlo, nhi) = old.args, new.args
        return combine(
            bound_relation(None if olo is None else (olo, False), None if nlo is None else (nlo, False), lower=True),
            bound_relation(None if ohi is None else (ohi, False), None if nhi is None else (nhi, False), lower=False),
        )
    if new.op is Op.MULTIPLE_OF:
        return multiple_relation(float(old.args[0]), float(new.args[0]))
    return None
