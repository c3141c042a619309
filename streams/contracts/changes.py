"""The changes ``contracts diff`` reports: their kinds, who each breaks, and the bump it requires."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from streams.contracts.compare import Relation
from streams.contracts.semver import Bump

__all__ = ["METADATA_KINDS", "Change", "ChangeKind", "make_change", "pattern_change"]


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
    POLICY_ADDED = "policy_added"
    POLICY_REMOVED = "policy_removed"
    POLICY_CHANGED = "policy_changed"
    UNIQUE_HORIZON_LENGTHENED = "unique_horizon_lengthened"
    UNIQUE_HORIZON_SHORTENED = "unique_horizon_shortened"
    UNIQUE_HORIZON_CHANGED = "unique_horizon_changed"
    STREAM_TIME_CHANGED = "stream_time_changed"


#: Kinds that change metadata only: never breaking, a patch bump.
METADATA_KINDS = frozenset(
    {
        ChangeKind.OWNER_CHANGED,
        ChangeKind.DESCRIPTION_CHANGED,
        ChangeKind.POLICY_ADDED,
        ChangeKind.POLICY_REMOVED,
        ChangeKind.POLICY_CHANGED,
    }
)


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


def make_change(
    kind: ChangeKind, schema: str | None, subject: str | None, old: Any, new: Any, relation: Relation | None,
    line: int | None, message: str, *, gating: bool = True,
) -> Change:  # fmt: skip
    """A change whose impact follows ``relation`` (tightened breaks producers, loosened consumers);
    ``gating=False`` (a warning or info rule) breaks nobody."""
    producers = gating and relation is not None and relation.breaks_producers
    consumers = gating and relation is not None and relation.breaks_consumers
    return Change(kind, schema, subject, old, new, producers, consumers, line, message)


def pattern_change(
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
    yield make_change(kind, schema, subject, old, new, rel, line, f"pattern {old!r} → {new!r}", gating=gating)
