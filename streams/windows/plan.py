"""How each rule of a schema object is judged on a window (compiled once per contract version).

===============  ===============================================================  ============
kind             rules                                                            evaluation
===============  ===============================================================  ============
``rows``         row predicates (types, ranges, patterns, sets, null / missing /   ``window``
                 invalid values, expressions), any threshold: failing records add
``values``       ``duplicateValues`` (quality metric): exact counts per value       ``window``
``row_count``    ``rowCount``: the window's decoded records                        ``window``
``sql``          ``type: sql`` whose query decomposes (:mod:`.sql`)                ``window``
``sql_batches``  other ``type: sql``: judged per batch slice of the window          ``batches``
``stream``       ``unique`` / ``primaryKey`` of a field: first accepted record      ``stream``
                 claims the value within the horizon (:mod:`.unique`)
===============  ===============================================================  ============

``window`` checks equal the check on the window's records validated as one frame.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from streams.contracts.model import Contract, Op, Rule, SchemaObject
from streams.contracts.stream import StreamSpec
from streams.validation.predicates import plan_rules
from streams.windows.sql import AggregatePlan, plan_sql, query_columns

__all__ = ["Evaluation", "RuleKind", "RulePlan", "WindowPlan"]


class RuleKind(enum.StrEnum):
    ROWS = "rows"
    VALUES = "values"
    ROW_COUNT = "row_count"
    SQL = "sql"
    SQL_BATCHES = "sql_batches"
    STREAM = "stream"


class Evaluation(enum.StrEnum):
    """What a window check was judged on (carried by the window summary)."""

    WINDOW = "window"  # the window's records as one frame
    BATCHES = "batches"  # each batch's slice of the window; failures = slices that broke the threshold
    STREAM = "stream"  # the stream's history within the uniqueness horizon


@dataclass(frozen=True, slots=True)
class RulePlan:
    rule: Rule
    kind: RuleKind
    sql: AggregatePlan | None = None
    why: str | None = None  # why an SQL rule is judged per batch slice

    @property
    def evaluation(self) -> Evaluation:
        if self.kind is RuleKind.SQL_BATCHES:
            return Evaluation.BATCHES
        return Evaluation.STREAM if self.kind is RuleKind.STREAM else Evaluation.WINDOW


def _kind(rule: Rule) -> tuple[RuleKind, AggregatePlan | None, str | None]:
    if rule.op is Op.ROW_COUNT:
        return RuleKind.ROW_COUNT, None, None
    if rule.op is Op.SQL:
        plan = plan_sql(str(rule.args[0]))
        if isinstance(plan, str):
            return RuleKind.SQL_BATCHES, None, plan
        return RuleKind.SQL, plan, None
    if rule.op is Op.UNIQUE:
        return (RuleKind.STREAM if rule.source == "schema" else RuleKind.VALUES), None, None
    return RuleKind.ROWS, None, None


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """The rules of one schema object, in report order, each with how it is judged on a window."""

    contract: Contract
    schema_obj: SchemaObject
    rules: tuple[RulePlan, ...]
    stream: StreamSpec

    @classmethod
    def of(cls, contract: Contract, schema_obj: SchemaObject, stream: StreamSpec | None = None) -> WindowPlan:
        plans = []
        for rule in plan_rules(schema_obj):
            kind, sql, why = _kind(rule)
            plans.append(RulePlan(rule, kind, sql, why))
        spec = stream if stream is not None else getattr(schema_obj, "stream", None) or StreamSpec()
        return cls(contract, schema_obj, tuple(plans), spec)

    def of_kind(self, *kinds: RuleKind) -> tuple[RulePlan, ...]:
        return tuple(p for p in self.rules if p.kind in kinds)

    @property
    def stream_unique(self) -> tuple[RulePlan, ...]:
        """The ``unique`` / ``primaryKey`` rules judged against the stream's history."""
        return self.of_kind(RuleKind.STREAM)

    @property
    def gating(self) -> frozenset[str]:
        """Names of the rules that quarantine a record on the stream, other than stream uniqueness.

        Row rules that gate rows (error severity, zero tolerance). ``duplicateValues`` is
        judged on the window only: on the stream it never quarantines a record (the
        engine's per-batch duplicates depend on how batches are cut); per-record
        routing of duplicates is what ``unique`` / ``primaryKey`` do.
        """
        return frozenset(p.rule.name for p in self.rules if p.rule.gates_rows and p.kind is RuleKind.ROWS)

    def frame_columns(self, available: list[str]) -> list[str]:
        """The columns the frame-reading rules need (all when an SQL query cannot be read for its columns)."""
        wanted: set[str] = set()
        for rp in self.of_kind(RuleKind.VALUES, RuleKind.SQL, RuleKind.SQL_BATCHES):
            if rp.kind is RuleKind.VALUES:
                wanted |= set(rp.rule.key_columns or (str(rp.rule.column),))
                continue
            read = query_columns(str(rp.rule.args[0]))
            if read is None:
                return list(available)
            wanted |= read
        return [c for c in available if c in wanted] or list(available[:1])

    @property
    def not_gating_on_stream(self) -> frozenset[str]:
        """Rules the engine may gate rows by that do not on the stream: batch uniqueness of ``unique`` /
        ``primaryKey`` (judged on the stream's history instead) and ``duplicateValues`` (a window verdict)."""
        return frozenset(p.rule.name for p in self.rules if p.kind in (RuleKind.STREAM, RuleKind.VALUES))

    @property
    def needs_frame(self) -> bool:
        """Some rule reads the conformed rows themselves (duplicate counts or SQL)."""
        return bool(self.of_kind(RuleKind.VALUES, RuleKind.SQL, RuleKind.SQL_BATCHES))
