"""``qstreams contracts lint``: the contract checks plus a dry run of every rule on the engine.

:func:`streams.contracts.loader.lint_contract` checks a contract statically (YAML, the ODCS
JSON Schema of its version, what the compiler supports). That cannot see everything the
engine will refuse at run time: a literal polars cannot type, an integer beyond int64, a
string compared with a number, a SQL query returning text. So lint also **runs every rule**
once, through the public :meth:`Contract.validate`, on a two-row frame of the schema's
dtypes filled with ordinary values, and reports each rule that cannot be evaluated as a
``file:line`` finding saying why. (This module sits above :mod:`streams.validation`; the
contracts layer never imports the engine.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from streams.contracts.loader import Finding, lint_contract, load_contract
from streams.contracts.model import Contract, Op, Rule, SchemaObject
from streams.contracts.ownership import ownership_findings
from streams.errors import ContractError
from streams.pipeline.loops import loop_reason, own_topics

if TYPE_CHECKING:
    pass

__all__ = [
    "authoring_findings",
    "drift_override_findings",
    "dry_run",
    "lint_file",
    "loop_reason",
    "monitoring_findings",
    "own_topics",
    "sample_frame",
]

_SAMPLE_ROWS = 2
#: about how many fields the dry run puts in one frame (see :func:`_parts`)
_PART_COLUMNS = 64


def lint_file(path: str | Path, *, allow_unowned: bool = False) -> list[Finding]:
    """Every problem (and note) in one contract file, including rules the engine cannot run, a contract
    in use without an owner or support channel (unless ``allow_unowned``) and bad response policies."""
    findings = lint_contract(path)
    if any(not f.note for f in findings):
        return findings
    try:
        contract = load_contract(path)
    except ContractError:  # a document without schema objects: lint_contract has noted it
        return findings
    from streams.policies.spec import policy_findings  # policies sit above contracts and events

    owned = ownership_findings(contract, allow_unowned=allow_unowned)
    monitoring = monitoring_findings(contract)
    authoring = authoring_findings(contract)
    return (findings + owned + authoring + policy_findings(contract) + monitoring + own_topics(contract)
            + dry_run(contract))  # fmt: skip


def authoring_findings(contract: Contract) -> list[Finding]:
    """What loads but cannot work: a ``version`` that is not semantic versioning (``contracts diff`` fails on it and
    the evidence bundle cannot order it) and bounds no value can satisfy (every row would fail the field)."""
    from streams.contracts.semver import parse_version

    path, doc = contract.path or "<contract>", contract.document
    out: list[Finding] = []
    if parse_version(contract.version) is None:
        line = doc.line(("version",)) if doc is not None else None
        out.append(Finding(path, line, f"version {contract.version!r} is not a semantic version (MAJOR.MINOR.PATCH, "
                                       "e.g. 1.4.0): `qstreams contracts diff` cannot check the version step and the "
                                       "evidence bundle cannot order the versions"))  # fmt: skip
    for schema in contract.schemas:
        bounds: dict[str | None, list[Rule]] = {}  # column -> its logicalTypeOptions rules: each rule read once
        for r in schema.rules:
            if r.source == "logicalTypeOptions":
                bounds.setdefault(r.column, []).append(r)
        for f in schema.fields:
            rules = bounds.get(f.name, [])
            lower = next(((r.args[0], r.op is Op.GT, r) for r in rules if r.op in (Op.GE, Op.GT)), None)
            upper = next(((r.args[0], r.op is Op.LT, r) for r in rules if r.op in (Op.LE, Op.LT)), None)
            # (minLength > maxLength never gets here: the loader refuses it, as pandera refuses str_length(3, 1))
            if lower is None or upper is None or not _empty(lower[0], lower[1] or upper[1], upper[0]):
                continue
            line = max((r.line for r in (lower[2], upper[2]) if r.line is not None), default=f.line)
            out.append(Finding(path, line, f"{schema.name}.{f.name}: no value can satisfy its bounds "
                                           f"({lower[2].check} and {upper[2].check}), so every row would fail; "
                                           "swapped minimum and maximum?"))  # fmt: skip
    return out


def _empty(low: Any, strict: bool, high: Any) -> bool:
    """No value lies between ``low`` and ``high`` (exclusive at either end when ``strict``); False when they
    cannot be compared."""
    try:
        return bool(low > high or (strict and low == high))
    except TypeError:
        return False


def monitoring_findings(contract: Contract) -> list[Finding]:
    """``qstreams.reference`` (the file exists, is a profile of this contract and schema, and every
    ``qstreams.drift`` override names a profiled field with a known method) and ``qstreams.prediction``
    (its fields exist): what a worker would refuse at start, said by lint first."""
    from streams.errors import ProfileError
    from streams.performance.binding import labels_line, labels_problem  # the joiner's own checks
    from streams.profiles.monitor import DriftMonitor  # profiles sit above validation
    from streams.profiles.properties import prediction_spec
    from streams.profiles.spec import PredictionSpec

    path = contract.path or "<contract>"
    out: list[Finding] = []
    checks: tuple[Callable[[Contract, str], object], ...] = (
        DriftMonitor.from_contract,
        prediction_spec,
    )
    for schema in contract.schemas:
        overrides = _override_findings(contract, schema)
        out += overrides
        for check in checks:
            try:
                spec = check(contract, schema.name)
            except (ContractError, ProfileError, OSError) as exc:
                # a ContractError's own location is the contract's; a ProfileError names the profile file
                message = exc.message if isinstance(exc, ContractError) else str(exc)
                if overrides and "qstreams.drift" in message:
                    continue  # said already, at the property's line
                out.append(Finding(path, schema.line, f"schema object {schema.name!r}: {message}"))
                continue
            if isinstance(spec, PredictionSpec) and (problem := labels_problem(spec, schema.name, schema.columns)):
                # what the performance joiner refuses at start (a labels binding), at its line
                out.append(Finding(path, labels_line(contract, schema.name, schema.line), f"schema object "
                                   f"{schema.name!r}: {problem}"))  # fmt: skip
    return out


def drift_override_findings(contract: Contract) -> list[Finding]:
    """Every ``qstreams.drift`` mapping names a field that is profiled and says what
    :func:`streams.profiles.drift.parse_override` accepts (``method`` of the field's kind or ``none``, a
    numeric ``threshold``, a positive ``minCount``, no other key), with or without a reference profile."""
    return [f for schema in contract.schemas for f in _override_findings(contract, schema)]


def _override_findings(contract: Contract, schema: SchemaObject) -> list[Finding]:
    from streams.profiles.drift import parse_override  # profiles sit above validation
    from streams.profiles.properties import drift_overrides
    from streams.profiles.spec import Kind, spec_for_schema

    path, where = contract.path or "<contract>", f"schema object {schema.name!r}"
    try:
        overrides = drift_overrides(contract, schema.name)
    except ContractError as exc:
        return [Finding(path, schema.line, f"{where}: {exc.message}")]
    kinds = {f.name: f.kind for f in spec_for_schema(contract, schema).fields}
    lines = {f.name: f.line for f in schema.fields}
    out: list[Finding] = []
    for name, raw in overrides.items():
        line = lines.get(name) or schema.line
        if name not in kinds:
            why = "not a property of it" if name not in lines else "not profiled (identifiers, redacted, temporal)"
            out.append(Finding(path, line, f"{where}: qstreams.drift is set on {name!r}, which is {why}"))
            continue
        try:
            parse_override(name, raw, "numeric" if kinds[name] is Kind.NUMERIC else "categorical")
        except ValueError as exc:
            out.append(Finding(path, line, f"{where}: {exc}"))
    return out


def dry_run(contract: Contract) -> list[Finding]:
    """Run every rule of every schema object once; a finding for each rule that errors.

    Each rule runs on a frame of the columns it reads, a few dozen columns at a time (:func:`_parts`): on one
    frame of every column, the engine's work per rule carried every column (quadratic). The findings are
    those of that one frame, in its order; a schema object the engine refuses in part is run whole, as before.
    """
    out: list[Finding] = []
    for schema in contract.schemas:
        try:
            out += _findings_in_parts(contract, schema)
        except Exception:  # the engine refused a part: run the whole object, for the whole object's words
            out += _findings(contract, schema)
    return out


def _findings(contract: Contract, schema: SchemaObject) -> list[Finding]:
    """The findings of a run of every rule of ``schema`` on one frame of every column."""
    path = contract.path or "<contract>"
    try:
        report = contract.validate(sample_frame(schema), schema.name)
    except Exception as exc:  # the engine refused the whole object: say so, never a traceback
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [Finding(path, schema.line, f"schema object {schema.name!r} cannot run on the engine: {first}")]
    rules = {r.name: r for r in schema.rules}
    return [f for check in report.checks if (f := _finding(path, rules, check.name, check.error)) is not None]


def _finding(path: str, rules: dict[str, Rule], name: str, error: str | None) -> Finding | None:
    rule = rules.get(name)
    if error is None or rule is None or _data_dependent(rule.op, error):
        return None
    return Finding(path, rule.line, f"rule {rule.name!r} cannot run on the engine: {_first(error)}")


def _findings_in_parts(contract: Contract, schema: SchemaObject) -> list[Finding]:
    """:func:`_findings`, each rule run in its part: ordered as the one frame orders its checks (first the
    implicit ``dtype`` check of each field without one, in field order, then the rules in order)."""
    path = contract.path or "<contract>"
    rules = {r.name: r for r in schema.rules}
    position = {id(r): k for k, r in enumerate(schema.rules)}
    fields = {f.name: k for k, f in enumerate(schema.fields)}
    found: dict[tuple[int, int], Finding] = {}
    for part in _parts(schema):
        report = replace(contract, schemas=(part,)).validate(sample_frame(part), part.name)
        implicit = len(report.checks) - len(part.rules)  # plan_rules: the implicit dtype checks come first
        for n, check in enumerate(report.checks):
            if check.error is not None and (finding := _finding(path, rules, check.name, check.error)) is not None:
                key = (0, fields[str(check.column)]) if n < implicit else (1, position[id(part.rules[n - implicit])])
                found[key] = finding
    return [found[k] for k in sorted(found)]


def _parts(schema: SchemaObject) -> list[SchemaObject]:
    """``schema`` cut into schema objects of about :data:`_PART_COLUMNS` fields each, every rule in one part
    with every column it reads; a rule reading a name that is no field (or a SQL query the allow-list refuses)
    in a part of every field. Each field and each rule is walked once."""
    if not schema.fields:
        return [schema]
    index = {f.name: i for i, f in enumerate(schema.fields)}
    homed: dict[int, list[tuple[Rule, frozenset[str]]]] = {}  # the last field a rule reads -> (rule, reads)
    wide: list[Rule] = []
    for rule in schema.rules:
        read = _reads(rule, schema.name)
        if read is None or any(c not in index for c in read):
            wide.append(rule)
        else:
            homed.setdefault(max((index[c] for c in read), default=len(schema.fields) - 1), []).append((rule, read))
    parts: list[SchemaObject] = []
    columns: dict[int, None] = {}
    rules: list[Rule] = []
    for i in range(len(schema.fields)):
        columns[i] = None
        for rule, read in homed.get(i, ()):
            rules.append(rule)
            columns.update((index[c], None) for c in read)
        if len(columns) >= _PART_COLUMNS or i == len(schema.fields) - 1:
            fields = tuple(schema.fields[k] for k in sorted(columns))
            parts.append(replace(schema, fields=fields, rules=tuple(rules)))
            columns, rules = {}, []
    if wide:
        parts.append(replace(schema, rules=tuple(wide)))
    return parts


def _reads(rule: Rule, table: str) -> frozenset[str] | None:
    """The fields ``rule`` needs in its frame; None when that is not known (every field)."""
    from streams.contracts.expressions import columns
    from streams.contracts.rules import sql_reads

    own = frozenset(() if rule.column is None else (rule.column,))
    if rule.op is Op.SQL:
        read = sql_reads(str(rule.args[0]), (table, "batch"))[0]
        return None if read is None else read | own
    if rule.op is Op.EXPRESSION:
        return frozenset(columns(rule.args[0])) | own
    return frozenset(rule.key_columns) | own


def _data_dependent(op: Op, error: str) -> bool:
    """A SQL aggregate over no matching rows is NULL: that depends on the data, not the rule."""
    return op is Op.SQL and "returned None" in error


def _first(error: str) -> str:
    lines = [ln.strip() for ln in error.strip().splitlines() if ln.strip()]
    return "; ".join(lines[:3]) if lines else "unknown error"


def sample_frame(schema: SchemaObject) -> pl.DataFrame:
    """A small frame with the schema's columns and dtypes, holding ordinary non-null values."""
    return pl.DataFrame(
        [pl.Series(f.name, [_sample(f.dtype)] * _SAMPLE_ROWS, dtype=f.dtype) for f in schema.fields],
        schema=schema.polars_schema,
    )


def _sample(dtype: pl.DataType) -> Any:
    if isinstance(dtype, pl.List):
        inner = dtype.inner
        return [_sample(inner if isinstance(inner, pl.DataType) else inner())]
    if isinstance(dtype, pl.Datetime):
        return dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC if dtype.time_zone else None)
    if isinstance(dtype, pl.Date):
        return dt.date(2020, 1, 1)
    if isinstance(dtype, pl.Time):
        return dt.time(12)
    if isinstance(dtype, pl.Boolean):
        return True
    if dtype.is_integer():
        return 1
    if dtype.is_float() or dtype.is_decimal():
        return 1.0
    if isinstance(dtype, pl.String):
        return "a"
    return None
