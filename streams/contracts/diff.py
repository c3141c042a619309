"""``contracts diff``: what changed between two versions of a contract, and who it breaks.

:func:`diff_contracts` compares two loaded contracts (the rule IR) per schema object, field and
rule (:mod:`streams.contracts.diff_rules`) and returns a :class:`ContractDiff`: one
:class:`Change` per difference, each classified as breaking or not **for producers** (records
they send today may be refused tomorrow: a constraint tightened) and **for consumers** (a
guarantee they rely on is weaker or gone: a constraint loosened, a field removed), with the
semver bump it requires, and :meth:`ContractDiff.semver`, the check of the contracts'
``version`` step. The rules are documented in ``docs/contracts-diff.md``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from streams.contracts.changes import Change, ChangeKind, make_change, pattern_change
from streams.contracts.compare import (
    Bound,
    Relation,
    bound_relation,
    classification_level,
    combine,
    multiple_relation,
    type_relation,
)
from streams.contracts.diff_rules import rule_changes
from streams.contracts.model import Contract, Field, Op, Rule, SchemaObject, Severity
from streams.contracts.semver import Bump, SemverCheck, check_bump
from streams.contracts.stream import ALLOWED_LATENESS, EVENT_TIME, UNIQUE_WITHIN, WINDOW, StreamSpec

__all__ = ["Change", "ChangeKind", "ContractDiff", "diff_contracts"]


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
        """The documents differ at all (a change the IR does not show still needs a patch bump), their ``version``
        aside: a version moving alone (``1.4.0`` → ``1.4.0+build.7``) changes no content."""
        return _content_sha256(self.old) != _content_sha256(self.new) or bool(self.changes)

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


def _content_sha256(contract: Contract) -> str:
    """The sha256 of the contract's document without its ``version`` (the contract's own sha256 without a document)."""
    if contract.document is None:
        return contract.sha256
    from streams.contracts.loader import canonical_sha256  # the loader's canonical form, imported when diffing

    return canonical_sha256({k: v for k, v in contract.document.data.items() if k != "version"})


def diff_contracts(old: Contract, new: Contract) -> ContractDiff:
    """Every difference between ``old`` and ``new`` that matters to producers, consumers or owners."""
    return ContractDiff(old, new, tuple(_contract_changes(old, new)))


# --- walking the two contracts ----------------------------------------------------------------------------


def _contract_changes(old: Contract, new: Contract) -> Iterator[Change]:
    def line(*keys: str) -> int | None:
        doc = new.document
        return next((doc.line((k,)) for k in keys if k in doc.data), None) if doc is not None else None

    if old.id != new.id:
        yield Change(ChangeKind.CONTRACT_ID_CHANGED, None, None, old.id, new.id, True, True, line("id"),
                     "the contract id changed: headers, events and bindings name the contract by id")  # fmt: skip
    if old.status != new.status:
        retired = new.status == "retired"
        yield Change(ChangeKind.STATUS_CHANGED, None, None, old.status, new.status, False, retired, line("status"),
                     f"status {old.status} → {new.status}")  # fmt: skip
    if old.owner != new.owner or old.ownership != new.ownership:
        yield Change(ChangeKind.OWNER_CHANGED, None, None, old.owner.team, new.owner.team, False, False,
                     line("team", "support", "roles"),
                     "the owning team, members, roles or support channel changed")  # fmt: skip
    olds, news = {s.name: s for s in old.schemas}, {s.name: s for s in new.schemas}
    for name, s in olds.items():
        if name not in news:
            yield Change(ChangeKind.SCHEMA_REMOVED, name, None, s.topic, None, False, True, s.line,
                         f"schema object {name!r} (topic {s.topic}) is no longer governed by the contract")  # fmt: skip
    replaced = {s.topic: s for name, s in olds.items() if name not in news}  # by topic: renamed schema objects
    for name, s in news.items():
        if name not in olds:
            yield Change(ChangeKind.SCHEMA_ADDED, name, None, None, s.topic, False, False, s.line,
                         f"schema object {name!r} bound to topic {s.topic}")  # fmt: skip
            if s.topic in replaced:  # renamed: the topic's records are judged by it now, so compare the two
                yield from _schema_changes(replaced[s.topic], s)
                yield from _stream_changes(replaced[s.topic], s, (old, new))
        else:
            yield from _schema_changes(olds[name], s)
            yield from _stream_changes(olds[name], s, (old, new))
    yield from _policy_changes(old, new)


#: The schema-level custom property of response policies (``streams.policies`` parses it; a layer above).
_POLICIES = "qstreams.policies"


def _policies(contract: Contract) -> dict[tuple[str, str], tuple[str, int | None]]:
    """``{(schema, policy name): (canonical JSON, line)}`` of the response policies a contract declares."""
    doc = contract.document
    out: dict[tuple[str, str], tuple[str, int | None]] = {}
    for i, obj in enumerate((doc.data.get("schema") or []) if doc is not None else []):
        for j, prop in enumerate((obj.get("customProperties") or []) if isinstance(obj, dict) else []):
            if (
                not isinstance(prop, dict)
                or prop.get("property") != _POLICIES
                or not isinstance(prop.get("value"), list)
            ):
                continue
            for k, policy in enumerate(prop["value"]):
                if isinstance(policy, dict) and isinstance(policy.get("name"), str):
                    text = json.dumps(policy, sort_keys=True, default=str)
                    line = doc.line(("schema", i, "customProperties", j, "value", k)) if doc is not None else None
                    out[(str(obj.get("name")), policy["name"])] = (text, line)
    return out


def _policy_changes(old: Contract, new: Contract) -> Iterator[Change]:
    """Response policies added, removed or changed: the monitoring plan, not the data (patch)."""
    before, after = _policies(old), _policies(new)
    for (schema, name), (_, line) in before.items():
        if (schema, name) not in after:
            yield Change(ChangeKind.POLICY_REMOVED, schema, name, None, None, False, False, line, "policy removed")
    for (schema, name), (text, line) in after.items():
        if (schema, name) not in before:
            yield Change(ChangeKind.POLICY_ADDED, schema, name, None, None, False, False, line, "policy added")
        elif before[(schema, name)][0] != text:
            yield Change(ChangeKind.POLICY_CHANGED, schema, name, None, None, False, False, line, "policy changed")


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
    yield from _key_changes(old, new)
    yield from rule_changes(name, old, new)


def _composite_key(schema: SchemaObject) -> Rule | None:
    """The uniqueness rule of a composite ``primaryKey`` (a schema rule over a tuple of columns), if any."""
    return next((r for r in schema.rules if r.source == "schema" and r.key_columns), None)


def _unique_under(columns: frozenset[str], schema: SchemaObject) -> bool:
    """Is every tuple of ``columns`` unique under ``schema``: its composite key lies within them, or one of them
    is a unique field (a unique ``a`` makes ``(a, b)`` unique)."""
    key = _composite_key(schema)
    return (key is not None and set(key.key_columns) <= columns) or any(
        f.unique and f.name in columns for f in schema.fields
    )


def _key_changes(old: SchemaObject, new: SchemaObject) -> Iterator[Change]:
    """A composite ``primaryKey`` added, removed or moved to other columns: the tuple's uniqueness is a rule the
    new contract adds (producers) unless the old one implied it, and a guarantee it drops (consumers) unless the
    new one implies it. Single-column keys are the fields' ``unique`` flags."""
    was, now = _composite_key(old), _composite_key(new)
    before, after = (None if r is None else list(r.key_columns) for r in (was, now))
    if before is not None and after is not None and set(before) == set(after):
        return  # the same tuple (a primaryKeyPosition moved)
    if now is not None and not _unique_under(frozenset(now.key_columns), old):
        yield Change(ChangeKind.UNIQUE_ADDED, new.name, "primaryKey", before, after, True, False, now.line,
                     f"composite primaryKey {after} added: records repeating a key are refused")  # fmt: skip
    if was is not None and not _unique_under(frozenset(was.key_columns), new):
        at = next((f.line for f in new.fields if f.name == was.key_columns[0]), new.line)  # a line of the new file
        yield Change(ChangeKind.UNIQUE_REMOVED, new.name, "primaryKey", before, after, False, True, at,
                     f"composite primaryKey {before} removed: consumers may see a key repeated")  # fmt: skip


def _stream_changes(old: SchemaObject, new: SchemaObject, contracts: tuple[Contract, Contract]) -> Iterator[Change]:
    """The stream-time settings (``qstreams.*`` custom properties). ``uniqueWithin`` decides how long a unique
    value stays claimed on the stream: longer refuses more records (producers), shorter guarantees less
    (consumers); unset means the deployment's ``STREAMS_UNIQUE_HORIZON_SECONDS``, which the contract cannot see,
    so setting or unsetting it is a change both ways. ``window``, ``allowedLateness`` and ``eventTime`` decide
    what every window verdict (counts, rates, ``rowCount``, SQL, drift) covers: a change both ways."""
    os_, ns = old.stream or StreamSpec(), new.stream or StreamSpec()
    name = new.name

    def at(key: str) -> int | None:  # a line of the new file (the schema object's when the setting was removed)
        return _custom_line(contracts[1], name, key) or new.line

    was, now = os_.unique_within_ms, ns.unique_within_ms
    if was != now:
        if was is None or now is None:
            kind, rel = ChangeKind.UNIQUE_HORIZON_CHANGED, Relation.CHANGED
        elif now > was:
            kind, rel = ChangeKind.UNIQUE_HORIZON_LENGTHENED, Relation.TIGHTENED
        else:
            kind, rel = ChangeKind.UNIQUE_HORIZON_SHORTENED, Relation.LOOSENED
        gating = any(r.op is Op.UNIQUE and r.severity is Severity.ERROR for r in new.rules + old.rules)
        before, after = (None if v is None else _duration(v) for v in (was, now))
        yield make_change(kind, name, None, before, after, rel, at(UNIQUE_WITHIN),
                          f"qstreams.uniqueWithin {before or '(the deployment default)'} → "
                          f"{after or '(the deployment default)'}: how long a unique value stays claimed on the "
                          "stream" + ("" if gating else " (no unique field or rule: breaks nobody)"),
                          gating=gating)  # fmt: skip
    for key, attr in ((WINDOW, "window_ms"), (ALLOWED_LATENESS, "allowed_lateness_ms"), (EVENT_TIME, "event_time")):
        old_v, new_v = getattr(os_, attr), getattr(ns, attr)
        if old_v != new_v:
            a, b = (_duration(v) if isinstance(v, int) else v for v in (old_v, new_v))
            yield make_change(ChangeKind.STREAM_TIME_CHANGED, name, key, a, b, Relation.CHANGED, at(key),
                              f"{key} {a} → {b}: every window verdict (counts, rates, rowCount, SQL, drift) "
                              "covers other records")  # fmt: skip


def _duration(ms: int) -> str:
    """``2592000000`` as ``30d``: the largest unit that divides the duration."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _custom_line(contract: Contract, schema: str, key: str) -> int | None:
    """The line of the custom property ``key`` of the schema object ``schema`` (None when it has none)."""
    doc = contract.document
    for i, obj in enumerate((doc.data.get("schema") or []) if doc is not None else []):
        if not isinstance(obj, dict) or obj.get("name") != schema:
            continue
        for j, prop in enumerate(obj.get("customProperties") or []):
            if isinstance(prop, dict) and prop.get("property") == key and doc is not None:
                return doc.line(("schema", i, "customProperties", j))
    return None


def _field_changes(schema: str, old: Field, new: Field, os: SchemaObject, ns: SchemaObject) -> Iterator[Change]:
    f, line = new.name, new.line
    rel = type_relation(old.dtype, new.dtype)
    if rel is not Relation.SAME:
        kind = {Relation.TIGHTENED: ChangeKind.TYPE_NARROWED, Relation.LOOSENED: ChangeKind.TYPE_WIDENED}.get(
            rel, ChangeKind.TYPE_CHANGED
        )
        yield make_change(kind, schema, f, str(old.dtype), str(new.dtype), rel, line, f"type {old.dtype} → {new.dtype}")
    for flag, added, removed in (
        ("required", ChangeKind.REQUIRED_ADDED, ChangeKind.REQUIRED_REMOVED),
        ("unique", ChangeKind.UNIQUE_ADDED, ChangeKind.UNIQUE_REMOVED),
    ):
        was, now = getattr(old, flag), getattr(new, flag)
        if was != now:
            rel = Relation.TIGHTENED if now else Relation.LOOSENED
            yield make_change(added if now else removed, schema, f, was, now, rel, line,
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
        yield make_change(kind, schema, f, oc.describe(), nc.describe(), bounds, at or line,
                      f"range {oc.describe()} → {nc.describe()}")  # fmt: skip
    yield from pattern_change(schema, f, oc.pattern, nc.pattern, nc.lines.get("pattern") or line, gating=True)
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
        if r.op in (Op.GE, Op.GT):  # `minimum` and `exclusiveMinimum` may both be set: the tighter one holds
            bound, key = (r.args[0], r.op is Op.GT), "lower"
            if c.lower is not None and bound_relation(c.lower, bound, lower=True) is not Relation.TIGHTENED:
                continue
            c.lower = bound
        elif r.op in (Op.LE, Op.LT):
            bound, key = (r.args[0], r.op is Op.LT), "upper"
            if c.upper is not None and bound_relation(c.upper, bound, lower=False) is not Relation.TIGHTENED:
                continue
            c.upper = bound
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
