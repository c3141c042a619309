"""The in-memory contract: governance metadata plus a backend-neutral rule IR.

A contract is parsed once into these frozen objects. Two backends execute the
same rules: :mod:`streams.validation.pandera` (the semantic reference) and
:mod:`streams.validation.engine` (the fused polars plan used on the hot path).
They sit above this module and register themselves
(:mod:`streams.contracts.backends`): nothing here imports them. Rules are *data*:
an operator name plus arguments, never code.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from streams.contracts.backends import get_backend
from streams.contracts.source import SourceDocument
from streams.contracts.stream import StreamSpec
from streams.errors import UnknownSchemaError

if TYPE_CHECKING:  # typing only: the report is produced by the validation backend
    from streams.validation.report import ValidationReport


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Classification(enum.StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    RESTRICTED = "restricted"
    CONFIDENTIAL = "confidential"
    PII = "pii"

    @property
    def redacted(self) -> bool:
        return self in (Classification.RESTRICTED, Classification.CONFIDENTIAL, Classification.PII)


class Scope(enum.StrEnum):
    """Where a rule is evaluated."""

    COLUMN = "Column"  # an element-wise predicate on one column (pandera ``schema_context``)
    FRAME = "DataFrameSchema"  # a row-wise predicate over several columns, or a batch metric


class Op(enum.StrEnum):
    """The operators a rule can use. Both backends implement every one of them."""

    # schema-derived
    DTYPE = "dtype"
    NOT_NULL = "not_nullable"
    UNIQUE = "field_uniqueness"
    # element-wise comparisons (pandera built-in checks)
    EQ = "equal_to"
    NE = "not_equal_to"
    GT = "greater_than"
    GE = "greater_than_or_equal_to"
    LT = "less_than"
    LE = "less_than_or_equal_to"
    IN_RANGE = "in_range"
    ISIN = "isin"
    NOTIN = "notin"
    STR_MATCHES = "str_matches"
    STR_CONTAINS = "str_contains"
    STR_STARTSWITH = "str_startswith"
    STR_ENDSWITH = "str_endswith"
    STR_LENGTH = "str_length"
    MULTIPLE_OF = "multiple_of"
    # ODCS library metrics counted per row
    MISSING = "missing_values"
    # frame level
    EXPRESSION = "expression"  # a row-wise predicate parsed from a safe expression
    ROW_COUNT = "row_count"  # batch metric: number of rows
    SQL = "sql"  # batch metric: scalar result of a polars SQL query


class Unit(enum.StrEnum):
    ROWS = "rows"
    PERCENT = "percent"


_OPERATORS = (
    "mustBe",
    "mustNotBe",
    "mustBeGreaterThan",
    "mustBeGreaterOrEqualTo",
    "mustBeLessThan",
    "mustBeLessOrEqualTo",
    "mustBeBetween",
    "mustNotBeBetween",
)
THRESHOLD_OPERATORS: tuple[str, ...] = _OPERATORS


@dataclass(frozen=True, slots=True)
class Threshold:
    """An ODCS threshold such as ``mustBeLessThan: 5`` applied to a metric."""

    operator: str = "mustBe"
    value: float | tuple[float, float] = 0
    unit: Unit = Unit.ROWS

    def allows(self, metric: float) -> bool:
        op, v = self.operator, self.value
        if math.isnan(metric):  # no number (a SQL share over no row): it breaks every threshold, mustNotBe too
            return False
        if op in ("mustBeBetween", "mustNotBeBetween"):
            assert isinstance(v, tuple)
            inside = v[0] <= metric <= v[1]
            return inside if op == "mustBeBetween" else not inside
        assert not isinstance(v, tuple)
        if op == "mustBe":
            return math.isclose(metric, v, abs_tol=1e-12)
        if op == "mustNotBe":
            return not math.isclose(metric, v, abs_tol=1e-12)
        if op == "mustBeGreaterThan":
            return metric > v
        if op == "mustBeGreaterOrEqualTo":
            return metric >= v
        if op == "mustBeLessThan":
            return metric < v
        if op == "mustBeLessOrEqualTo":
            return metric <= v
        raise ValueError(f"unknown threshold operator {op!r}")

    @property
    def zero_tolerance(self) -> bool:
        """True when any failing row breaks the threshold (so failing rows are quarantined)."""
        smallest = 1e-9 if self.unit is Unit.PERCENT else 1.0
        return self.allows(0) and not self.allows(smallest)

    def describe(self) -> str:
        v = self.value
        shown = f"{v[0]:g} and {v[1]:g}" if isinstance(v, tuple) else f"{v:g}"
        return f"{self.operator} {shown} {self.unit.value}"


ZERO_FAILURES = Threshold()


@dataclass(frozen=True, slots=True)
class Rule:
    """One executable check, in both backends, with its governance metadata.

    ``check`` is pandera's name for it (``greater_than_or_equal_to(0)``,
    ``not_nullable``, ``isin(['a', 'b'])``), which is what failure cases and the
    CLI's JSON output report.
    """

    name: str
    op: Op
    args: tuple[Any, ...]
    check: str
    column: str | None = None
    severity: Severity = Severity.ERROR
    threshold: Threshold = ZERO_FAILURES
    dimension: str | None = None
    description: str | None = None
    source: str = "schema"  # schema | logicalTypeOptions | quality | custom | sql | pandera
    line: int | None = None

    @property
    def scope(self) -> Scope:
        return Scope.COLUMN if self.column is not None else Scope.FRAME

    @property
    def is_batch_metric(self) -> bool:
        """Batch metrics have a value per batch, not a verdict per row."""
        return self.op in (Op.ROW_COUNT, Op.SQL)

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The columns a composite uniqueness rule (primary key, schema-level ``duplicateValues``)
        reads as one tuple; ``()`` for every other rule."""
        return tuple(self.args[0]) if self.op is Op.UNIQUE and self.args else ()

    @property
    def gates_rows(self) -> bool:
        """Rows failing this rule are invalid (quarantined in gate mode)."""
        return self.severity is Severity.ERROR and not self.is_batch_metric and self.threshold.zero_tolerance


@dataclass(frozen=True, slots=True)
class Field:
    """One property of a schema object."""

    name: str
    logical_type: str
    dtype: pl.DataType
    required: bool = False
    unique: bool = False
    primary_key: bool = False
    classification: Classification | None = None
    description: str | None = None
    line: int | None = None

    @property
    def redacted(self) -> bool:
        return self.classification is not None and self.classification.redacted


@dataclass(frozen=True, slots=True)
class Owner:
    """Who answers for the data: the team, its members and where to reach it.

    ``roles`` names the owners: the owning team (ODCS ``team.name``), then the current team
    members with ``role: owner`` (:attr:`Contract.ownership`'s ``owners``). The contract's
    access ``roles`` (grants to read or write) are not owners and are not here.
    """

    team: str | None = None
    members: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    support_channel: str | None = None
    support_url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "team": self.team,
            "members": list(self.members),
            "roles": list(self.roles),
            "support_channel": self.support_channel,
            "support_url": self.support_url,
        }


@dataclass(frozen=True, slots=True)
class Ownership:
    """Who answers for the contract, read from ODCS ``team``, ``support`` and ``authoritativeDefinitions``.

    ``owners`` are the current team members whose ``role`` is ``owner`` (any case; a member with a
    past ``dateOut`` or a future ``dateIn`` is not current); ``support_*`` is the first ``support``
    entry; ``runbook_url`` the first ``authoritativeDefinitions`` entry of ``type: runbook`` (the
    contract's, else the team's). :attr:`named` says whether anyone answers for it: the team has a
    name, or a member is its owner.
    """

    team: str | None = None
    owners: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    support_channel: str | None = None
    support_url: str | None = None
    support_tool: str | None = None
    runbook_url: str | None = None

    @property
    def named(self) -> bool:
        return bool(self.team or self.owners)

    def as_dict(self) -> dict[str, Any]:
        return {
            "team": self.team,
            "owners": list(self.owners),
            "members": list(self.members),
            "support_channel": self.support_channel,
            "support_url": self.support_url,
            "runbook_url": self.runbook_url,
        }


@dataclass(frozen=True, slots=True)
class SchemaObject:
    """An ODCS schema object: a table of records, bound to a Kafka topic by ``physicalName``."""

    name: str
    topic: str
    fields: tuple[Field, ...]
    rules: tuple[Rule, ...]
    description: str | None = None
    line: int | None = None
    #: stream-time settings (``qstreams.*`` custom properties); None: the settings' defaults
    stream: StreamSpec | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> Field:
        """The field called ``name``; :class:`UnknownSchemaError` (a ``KeyError``) if there is none."""
        for f in self.fields:
            if f.name == name:
                return f
        names = ", ".join(self.columns) or "none"
        raise UnknownSchemaError(f"Schema object {self.name!r} has no field {name!r}; its fields are: {names}.")

    @property
    def polars_schema(self) -> pl.Schema:
        return pl.Schema({f.name: f.dtype for f in self.fields})

    @property
    def redacted_columns(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields if f.redacted)


@dataclass(frozen=True, slots=True)
class SLA:
    property: str
    value: Any
    unit: str | None = None
    element: str | None = None


@dataclass(frozen=True)
class Contract:
    """A loaded data contract: identity, owners, SLAs and one or more schema objects."""

    id: str
    version: str
    status: str
    sha256: str
    schemas: tuple[SchemaObject, ...]
    name: str | None = None
    api_version: str = "v3.1.0"
    domain: str | None = None
    owner: Owner = field(default_factory=Owner)
    slas: tuple[SLA, ...] = ()
    path: str | None = None
    #: owners, support channel and runbook (:class:`Ownership`); ``owner`` is the older summary events carry
    ownership: Ownership = field(default_factory=Ownership)
    #: the source document (data and line numbers) it was compiled from, for checks that name ``file:line``
    document: SourceDocument | None = field(default=None, compare=False, repr=False)

    @property
    def ref(self) -> str:
        """``id@version``, the form used in headers and events."""
        return f"{self.id}@{self.version}"

    def schema(self, name: str | None = None) -> SchemaObject:
        """The schema object called ``name`` (or bound to topic ``name``); the only one if omitted.

        Raises :class:`~streams.errors.UnknownSchemaError` (a ``ContractError`` and a
        ``KeyError``) naming the schema objects the contract has.
        """
        if name is None:
            if len(self.schemas) != 1:
                raise UnknownSchemaError(
                    f"Contract {self._where()} has several schema objects, so one must be named; "
                    f"its schema objects are: {self._schema_names()}."
                )
            return self.schemas[0]
        for s in self.schemas:
            if name in (s.name, s.topic):
                return s
        raise UnknownSchemaError(
            f"Contract {self._where()} has no schema object {name!r}, by name or by topic (a typo, or the "
            f"wrong contract?); its schema objects are: {self._schema_names()}."
        )

    def _where(self) -> str:
        return f"{self.ref} ({self.path})" if self.path else self.ref

    def _schema_names(self) -> str:
        return ", ".join(f"{s.name} (topic {s.topic})" for s in self.schemas) or "none"

    def to_pandera(self, schema: str | None = None) -> Any:
        """This contract as a ``pandera.polars.DataFrameSchema`` (the semantic reference).

        Run by the ``pandera`` backend (:mod:`streams.validation.pandera`).
        """
        return get_backend("pandera")(self.schema(schema), self)

    def validate(self, df: pl.DataFrame, schema: str | None = None) -> ValidationReport:
        """Validate a polars DataFrame with the fused engine; never raises on bad data.

        Run by the ``validate`` backend (:func:`streams.validation.compile_plan`); a worker
        compiles the plan once instead (``compile_plan(contract, schema)``).
        """
        report: ValidationReport = get_backend("validate")(self, df, schema)
        return report


def check_label(op: Op, args: tuple[Any, ...], dtype: pl.DataType | None = None) -> str:
    """pandera's name for a check (its ``error`` string), as failure cases report it."""
    if op is Op.DTYPE:
        return f"dtype('{dtype}')"
    if op is Op.UNIQUE and args:
        return f"multiple_fields_uniqueness({list(args[0])})"
    if op in (Op.NOT_NULL, Op.UNIQUE, Op.ROW_COUNT):
        return op.value
    if op in (Op.EQ, Op.NE, Op.GT, Op.GE, Op.LT, Op.LE, Op.MULTIPLE_OF):
        return f"{op.value}({args[0]})"
    if op is Op.IN_RANGE:
        return f"in_range({args[0]}, {args[1]})"
    if op in (Op.ISIN, Op.NOTIN, Op.MISSING):
        return f"{op.value}({list(args[0])})"
    if op in (Op.STR_MATCHES, Op.STR_CONTAINS, Op.STR_STARTSWITH, Op.STR_ENDSWITH):
        return f"{op.value}('{args[0]}')"
    if op is Op.STR_LENGTH:
        return f"str_length({args[0]}, {args[1]})"
    if op is Op.EXPRESSION:
        from streams.contracts.expressions import to_text

        return f"expression({to_text(args[0])})"
    if op is Op.SQL:
        return "sql"
    raise ValueError(f"no check label for {op}")
