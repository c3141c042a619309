"""``contracts diff``: what changed between two versions of a contract, and who it breaks.

:func:`diff_contracts` compares two loaded contracts (the rule IR) per schema object, field and
rule and returns a :class:`ContractDiff`: one :class:`Change` per difference, each classified as
breaking or not **for producers** (records they send today may be refused tomorrow: a constraint
tightened) and **for consumers** (a guarantee they rely on is weaker or gone: a constraint
loosened, a field removed), with the semver bump it requires, and :func:`check_semver` of the
contracts' ``version`` step. The rules are documented in ``docs/contracts-diff.md``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from streams.contracts.compare import (
    Bound,
    Relation,
    bound_relation,
    classification_level,
    combine,
    multiple_relation,
    threshold_relation,
    type_relation,
)
from streams.contracts.model import Contract, Field, Op, Rule, SchemaObject, Severity
from streams.contracts.semver import Bump, SemverCheck, check_bump

__all__ = ["Change", "ChangeKind", "ContractDiff", "diff_contracts"]


class ChangeKind(enum.StrEnum):
    CONTRACT_ID_CHANGED = "contract_id_changed"
    STATUS_CHANGED = "status_changed"
    OWNER_CHANGED = "owner_changed"
    SCHEMA_REMOVED = "schema_removed"
    SCHEMA_ADDED = "schema_added"
    TOPIC_CHANGED = "topic_changed"
    FIELD_REMOVED = "field_removed"
    FIELD_ADDED = "field_added"
    TYPE_NARROWED = "type_narrowed"
    TYPE_WIDENED = "type_widened"
    TYPE_CHANGED = "type_changed"
    REQUIRED_ADDED = "required_added"
    REQUIRED_REMOVED = "required_removed"
    UNIQUE_ADDED = "unique_added"
    UNIQUE_REMOVED = "unique_removed"
    RANGE_TIGHTENED = "range_tightened"
    RANGE_LOOSENED = "range_loosened"
    RANGE_CHANGED = "range_changed"
    ENUM_VALUES_REMOVED = "enum_values_removed"
    ENUM_VALUES_ADDED = "enum_values_added"
    PATTERN_ADDED = "pattern_added"
    PATTERN_REMOVED = "pattern_removed"
    PATTERN_CHANGED = "pattern_changed"
    CLASSIFICATION_RAISED = "classification_raised"
    CLASSIFICATION_LOWERED = "classification_lowered"
    CLASSIFICATION_CHANGED = "classification_changed"
    RULE_ADDED = "rule_added"
    RULE_REMOVED = "rule_removed"
    RULE_CHANGED = "rule_changed"
    THRESHOLD_TIGHTENED = "threshold_tightened"
    THRESHOLD_LOOSENED = "threshold_loosened"
    THRESHOLD_CHANGED = "threshold_changed"
    SEVERITY_RAISED = "severity_raised"
    SEVERITY_LOWERED = "severity_lowered"
    SEVERITY_CHANGED = "severity_changed"
    DESCRIPTION_CHANGED = "description_changed"


#: Kinds that change metadata only: never breaking, a patch bump.
METADATA_KINDS = frozenset({ChangeKind.OWNER_CHANGED, ChangeKind.DESCRIPTION_CHANGED})


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between the two contracts."""

    kind: ChangeKind
    schema: str | None
    subject: str | None  # the field or rule it concerns
    old: Any
    new: Any
    breaks_producers: bool
    breaks_consumers: bool
    line: int | None = None  # in the new contract (the old one's when the thing was removed)
    message: str = ""

    @property
    def breaking(self) -> bool:
        return self.breaks_producers or self.breaks_consumers

    @property
    def bump(self) -> Bump:
        """The semver bump this change requires: major if breaking, patch for metadata, else minor."""
        if self.breaking:
            return Bump.MAJOR
        if self.kind in METADATA_KINDS or (self.kind is ChangeKind.STATUS_CHANGED and self.new != "deprecated"):
            return Bump.PATCH
        return Bump.MINOR

    @property
    def where(self) -> str:
        return ".".join(p for p in (self.schema, self.subject) if p) or "(contract)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "schema": self.schema,
            "subject": self.subject,
            "old": _jsonable(self.old),
            "new": _jsonable(self.new),
            "breaks_producers": self.breaks_producers,
            "breaks_consumers": self.breaks_consumers,
            "bump": str(self.bump),
            "line": self.line,
            "message": self.message,
        }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple | frozenset | set):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, frozenset | set) else items
    return str(value)


@dataclass(frozen=True)
class ContractDiff:
    old: Contract
    new: Contract
    changes: tuple[Change, ...] = field(default_factory=tuple)

    @property
    def required_bump(self) -> Bump:
        return max((c.bump for c in self.changes), default=Bump.NONE)

    @property
    def changed(self) -> bool:
        """The documents differ at all (a change the IR does not show still needs a patch bump)."""
        return self.old.sha256 != self.new.sha256 or bool(self.changes)

    def semver(self) -> SemverCheck:
        return check_bump(self.old.version, self.new.version, self.required_bump, self.changed)

    def as_dict(self) -> dict[str, Any]:
        check = self.semver()

        def side(c: Contract) -> dict[str, Any]:
            return {"id": c.id, "version": c.version, "sha256": c.sha256, "path": c.path}

        return {
            "old": side(self.old),
            "new": side(self.new),
            "changes": [c.as_dict() for c in self.changes],
            "breaking_for_producers": any(c.breaks_producers for c in self.changes),
            "breaking_for_consumers": any(c.breaks_consumers for c in self.changes),
            "semver": {
                "ok": check.ok,
                "required": str(check.required),
                "actual": str(check.actual) if check.actual is not None else None,
                "message": check.message,
            },
        }


def diff_contracts(old: Contract, new: Contract) -> ContractDiff:
    """Every difference between ``old`` and ``new`` that matters to producers, consumers or owners."""
    return ContractDiff(old, new, tuple(_contract_changes(old, new)))


# --- walking the two contracts ----------------------------------------------------------------------------


def _change(
    kind: ChangeKind, schema: str | None, subject: str | None, old: Any, new: Any, relation: Relation | None,
    line: int | None, message: str, *, gating: bool = True,
) -> Change:  # fmt: skip
    """A change whose impact follows ``relation`` (tightened breaks producers, loosened consumers);
    ``gating=False`` (a warning or info rule) breaks nobody."""
    producers = gating and relation is not None and relation.breaks_producers
    consumers = gating and relation is not None and relation.breaks_consumers
    return Change(kind, schema, subject, old, new, producers, consumers, line, message)


def _contract_changes(old: Contract, new: Contract) -> Iterator[Change]:
    if old.id != new.id:
        yield Change(ChangeKind.CONTRACT_ID_CHANGED, None, None, old.id, new.id, True, True, None,
                     "the contract id changed: headers, events and bindings name the contract by id")  # fmt: skip
    if old.status != new.status:
        retired = new.status == "retired"
        yield Change(ChangeKind.STATUS_CHANGED, None, None, old.status, new.status, False, retired, None,
                     f"status {old.status} → {new.status}")  # fmt: skip
    if old.owner != new.owner or old.ownership != new.ownership:
        yield Change(ChangeKind.OWNER_CHANGED, None, None, old.owner.team, new.owner.team, False, False, None,
                     "the owning team, members, roles or support channel changed")  # fmt: skip
    olds, news = {s.name: s for s in old.schemas}, {s.name: s for s in new.schemas}
    for name, s in olds.items():
        if name not in news:
            yield Change(ChangeKind.SCHEMA_REMOVED, name, None, s.topic, None, False, True, s.line,
                         f"schema object {name!r} (topic {s.topic}) is no longer governed by the contract")  # fmt: skip
    for name, s in news.items():
        if name not in olds:
            yield Change(ChangeKind.SCHEMA_ADDED, name, None, None, s.topic, False, False, s.line,
                         f"schema object {name!r} bound to topic {s.topic}")  # fmt: skip
        else:
            yield from _schema_changes(olds[name], s)


def _schema_changes(old: SchemaObject, new: SchemaObject) -> Iterator[Change]:
    name = new.name
    if old.topic != new.topic:
        yield Change(ChangeKind.TOPIC_CHANGED, name, None, old.topic, new.topic, True, True, new.line,
                     "physicalName (the topic) changed: producers write and consumers read another topic")  # fmt: skip
    if (old.description or "") != (new.description or ""):
        yield Change(ChangeKind.DESCRIPTION_CHANGED, name, None, None, None, False, False, new.line,
                     "the schema object's description changed")  # fmt: skip
    ofields, nfields = {f.name: f for f in old.fields}, {f.name: f for f in new.fields}
    for fname, f in ofields.items():
        if fname not in nfields:
            yield Change(ChangeKind.FIELD_REMOVED, name, fname, f.logical_type, None, False, True, f.line,
                         f"field {fname!r} removed: consumers reading it break")  # fmt: skip
    for fname, f in nfields.items():
        if fname not in ofields:
            yield Change(ChangeKind.FIELD_ADDED, name, fname, None, f.logical_type, f.required, False, f.line,
                         f"{'required' if f.required else 'optional'} field {fname!r} added"
                         + (": producers must send it" if f.required else ""))  # fmt: skip
        else:
            yield from _field_changes(name, ofields[fname], f, old, new)
    yield from _rule_changes(name, old, new)


def _field_changes(schema: str, old: Field, new: Field, os: SchemaObject, ns: SchemaObject) -> Iterator[Change]:
    f, line = new.name, new.line
    rel = type_relation(old.dtype, new.dtype)
    if rel is not Relation.SAME:
        kind = {Relation.TIGHTENED: ChangeKind.TYPE_NARROWED, Relation.LOOSENED: ChangeKind.TYPE_WIDENED}.get(
            rel, ChangeKind.TYPE_CHANGED
        )
        yield _change(kind, schema, f, str(old.dtype), str(new.dtype), rel, line, f"type {old.dtype} → {new.dtype}")
    for flag, added, removed in (
        ("required", ChangeKind.REQUIRED_ADDED, ChangeKind.REQUIRED_REMOVED),
        ("unique", ChangeKind.UNIQUE_ADDED, ChangeKind.UNIQUE_REMOVED),
    ):
        was, now = getattr(old, flag), getattr(new, flag)
        if was != now:
            rel = Relation.TIGHTENED if now else Relation.LOOSENED
            yield _change(added if now else removed, schema, f, was, now, rel, line,
                          f"{flag} {'added' if now else 'removed'}")  # fmt: skip
    oc, nc = _constraints(os, f), _constraints(ns, f)
    bounds = combine(
        bound_relation(oc.lower, nc.lower, lower=True),
        bound_relation(oc.upper, nc.upper, lower=False),
        bound_relation(oc.min_len, nc.min_len, lower=True),
        bound_relation(oc.max_len, nc.max_len, lower=False),
        multiple_relation(oc.multiple, nc.multiple),
    )
    if bounds is not Relation.SAME:
        kind = {Relation.TIGHTENED: ChangeKind.RANGE_TIGHTENED, Relation.LOOSENED: ChangeKind.RANGE_LOOSENED}.get(
            bounds, ChangeKind.RANGE_CHANGED
        )
        at = nc.line_of_change(oc) if nc.lines else line
        yield _change(kind, schema, f, oc.describe(), nc.describe(), bounds, at or line,
                      f"range {oc.describe()} → {nc.describe()}")  # fmt: skip
    yield from _pattern_change(schema, f, oc.pattern, nc.pattern, nc.lines.get("pattern") or line, gating=True)
    lo, ln = classification_level(old.classification), classification_level(new.classification)
    if old.classification != new.classification:
        shown = (str(old.classification or "none"), str(new.classification or "none"))
        if ln > lo:
            yield Change(ChangeKind.CLASSIFICATION_RAISED, schema, f, *shown, False, True, line,
                         "more sensitive: values are redacted in outputs, and consumers may no longer be entitled "
                         "to them")  # fmt: skip
        else:
            kind = ChangeKind.CLASSIFICATION_LOWERED if ln < lo else ChangeKind.CLASSIFICATION_CHANGED
            yield Change(kind, schema, f, *shown, False, False, line,
                         "review: values of this field are " + ("no longer redacted" if ln < lo and lo == 2 else
                                                                 "classified differently"))  # fmt: skip
    if (old.description or "") != (new.description or ""):
        yield Change(ChangeKind.DESCRIPTION_CHANGED, schema, f, None, None, False, False, line,
                     "the field's description changed")  # fmt: skip


def _pattern_change(
    schema: str, subject: str, old: str | None, new: str | None, line: int | None, *, gating: bool
) -> Iterator[Change]:
    if old == new:
        return
    if old is None:
        kind, rel = ChangeKind.PATTERN_ADDED, Relation.TIGHTENED
    elif new is None:
        kind, rel = ChangeKind.PATTERN_REMOVED, Relation.LOOSENED
    else:  # whether one regular language contains another is not decided here: both sides may break
        kind, rel = ChangeKind.PATTERN_CHANGED, Relation.CHANGED
    yield _change(kind, schema, subject, old, new, rel, line, f"pattern {old!r} → {new!r}", gating=gating)


@dataclass
class _Constraints:
    """The logicalTypeOptions constraints of one field, read back from its rules."""

    lower: Bound = None
    upper: Bound = None
    min_len: Bound = None
    max_len: Bound = None
    multiple: float | None = None
    pattern: str | None = None
    lines: dict[str, int | None] = field(default_factory=dict)  # the line of each constraint

    def line_of_change(self, other: _Constraints) -> int | None:
        """The line of the first constraint that differs from ``other`` (in this contract)."""
        for key in ("lower", "upper", "min_len", "max_len", "multiple", "pattern"):
            if getattr(self, key) != getattr(other, key) and self.lines.get(key) is not None:
                return self.lines[key]
        return next((ln for ln in self.lines.values() if ln is not None), None)

    def describe(self) -> str:
        parts = []
        if self.lower is not None:
            parts.append(f"{'>' if self.lower[1] else '>='} {self.lower[0]}")
        if self.upper is not None:
            parts.append(f"{'<' if self.upper[1] else '<='} {self.upper[0]}")
        if self.min_len is not None or self.max_len is not None:
            lo = self.min_len[0] if self.min_len else 0
            hi = self.max_len[0] if self.max_len else "∞"
            parts.append(f"length {lo}..{hi}")
        if self.multiple is not None:
            parts.append(f"multiple of {self.multiple}")
        return ", ".join(parts) or "unbounded"


def _constraints(schema: SchemaObject, field_name: str) -> _Constraints:
    c = _Constraints()
    for r in schema.rules:
        if r.column != field_name or r.source != "logicalTypeOptions":
            continue
        if r.op in (Op.GE, Op.GT):
            c.lower, key = (r.args[0], r.op is Op.GT), "lower"
        elif r.op in (Op.LE, Op.LT):
            c.upper, key = (r.args[0], r.op is Op.LT), "upper"
        elif r.op is Op.STR_LENGTH:
            lo, hi = r.args
            c.min_len = (lo, False) if lo is not None else None
            c.max_len = (hi, False) if hi is not None else None
            c.lines["max_len"] = r.line
            key = "min_len"
        elif r.op is Op.MULTIPLE_OF:
            c.multiple, key = float(r.args[0]), "multiple"
        elif r.op is Op.STR_CONTAINS:
            c.pattern, key = str(r.args[0]), "pattern"
        else:
            continue
        c.lines[key] = r.line
    return c


# --- quality rules -------------------------------------------------------------------------------------------

_SCHEMA_SOURCES = ("schema", "logicalTypeOptions")
_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


def _gates(rule: Rule) -> bool:
    return rule.severity is Severity.ERROR


def _rule_changes(schema: str, old: SchemaObject, new: SchemaObject) -> Iterator[Change]:
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
            yield _change(kind, schema, name, was, now, rel, line, f"threshold {was} → {now}", gating=gating)
    if old.severity is not new.severity:
        up = _SEVERITY_RANK[new.severity] > _SEVERITY_RANK[old.severity]
        if Severity.ERROR in (old.severity, new.severity):  # the rule starts or stops gating rows
            kind, rel = (ChangeKind.SEVERITY_RAISED, Relation.TIGHTENED) if up else (
                ChangeKind.SEVERITY_LOWERED, Relation.LOOSENED)  # fmt: skip
            yield _change(kind, schema, name, str(old.severity), str(new.severity), rel, line,
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
            yield _change(ChangeKind.ENUM_VALUES_REMOVED, schema, name, sorted(removed, key=str), None,
                          Relation.TIGHTENED, line, f"allowed values removed: {sorted(removed, key=str)}",
                          gating=gating)  # fmt: skip
        if added:
            yield _change(ChangeKind.ENUM_VALUES_ADDED, schema, name, None, sorted(added, key=str),
                          Relation.LOOSENED, line, f"allowed values added: {sorted(added, key=str)}",
                          gating=gating)  # fmt: skip
        return
    if same_target and new.op in (Op.STR_CONTAINS, Op.STR_MATCHES):
        yield from _pattern_change(schema, name, str(old.args[0]), str(new.args[0]), line, gating=gating)
        return
    rel = _bound_rule_relation(old, new) if old.column == new.column else None
    kind = {Relation.TIGHTENED: ChangeKind.RANGE_TIGHTENED, Relation.LOOSENED: ChangeKind.RANGE_LOOSENED}.get(
        rel or Relation.CHANGED, ChangeKind.RULE_CHANGED if rel is None else ChangeKind.RANGE_CHANGED
    )
    yield _change(kind, schema, name, old.check, new.check, rel or Relation.CHANGED, line,
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
