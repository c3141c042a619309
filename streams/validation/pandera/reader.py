"""pandera -> IR: a contract read from a pandera-native schema, and the loading of one.

:func:`load_pandera_object` imports a ``DataFrameSchema`` or ``DataFrameModel`` from
``"module:attr"``: it runs that module's code, so it is **opt-in and for trusted code only**.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
from typing import Any

import pandera.polars as pa
import polars as pl
from pandera.api.base.checks import BaseCheck
from pandera.api.function_dispatch import Dispatcher

from streams.contracts import expressions
from streams.contracts.model import (
    Classification,
    Contract,
    Field,
    Op,
    Owner,
    Rule,
    SchemaObject,
    Severity,
    Threshold,
    Unit,
    check_label,
)
from streams.contracts.types import temporal_value
from streams.errors import ContractError, UnsupportedRuleError
from streams.validation.pandera.checks import BUILTINS, MARKER, jsonable

__all__ = ["from_pandera", "ir_sha256", "load_pandera_object"]


def from_pandera(
    obj: Any,
    *,
    contract_id: str,
    version: str,
    owner: Owner | str | None = None,
    status: str = "active",
    name: str | None = None,
    schema_name: str | None = None,
    topic: str | None = None,
) -> Contract:
    """A contract from a pandera-native schema (``DataFrameSchema`` or ``DataFrameModel`` class).

    Columns give fields (dtype, ``nullable=False`` -> required + ``not_nullable``,
    ``unique`` -> ``field_uniqueness``); built-in checks become rules (recognized
    by ``name`` and ``statistics``), ``raise_warning`` checks get warning
    severity. Column ``metadata`` may set ``classification``, ``logical_type`` and
    ``primary_key``. Regex columns, groupby or element-wise checks, custom
    check functions and multi-column ``unique`` raise :class:`UnsupportedRuleError`.
    Built-in checks with ``ignore_na=False`` are refused too. ``strict``, ``ordered``,
    ``coerce`` and ``required=False`` are ignored: the engine always conforms dtypes,
    keeps extra columns and reports a missing declared column. ``sha256`` hashes a
    canonical JSON of the IR (:func:`ir_sha256`).
    """
    schema = obj.to_schema() if isinstance(obj, type) and hasattr(obj, "to_schema") else obj
    if not isinstance(schema, pa.DataFrameSchema):
        raise ContractError(f"expected a pandera.polars DataFrameSchema or DataFrameModel, got {type(obj).__name__}")
    object_name = schema_name or schema.name or schema.title or contract_id
    if schema.unique:
        raise UnsupportedRuleError(
            f"DataFrameSchema(unique={schema.unique!r}): multi-column uniqueness is not supported"
        )
    fields: list[Field] = []
    rules: list[Rule] = []
    for col_name, col in schema.columns.items():
        if col.regex:
            raise UnsupportedRuleError(f"column {col_name!r}: regex column selectors are not supported")
        dtype = _polars_dtype(col.dtype, str(col_name))
        meta = col.metadata or {}
        try:
            classification = Classification(meta["classification"]) if meta.get("classification") else None
        except ValueError:
            raise ContractError(f"column {col_name!r}: unknown classification {meta['classification']!r}") from None
        field = Field(
            name=str(col_name),
            logical_type=str(meta.get("logical_type") or _logical_type(dtype)),
            dtype=dtype,
            required=not col.nullable,
            unique=bool(col.unique),
            primary_key=bool(meta.get("primary_key", False)),
            classification=classification,
            description=col.description,
        )
        fields.append(field)
        rules.append(_schema_rule(field, "dtype", Op.DTYPE, "conformity"))
        if not col.nullable:
            rules.append(_schema_rule(field, "required", Op.NOT_NULL, "completeness"))
        if col.unique:
            rules.append(_schema_rule(field, "unique", Op.UNIQUE, "uniqueness"))
        rules += [_from_check(c, field.name, dtype) for c in col.checks]
    dtypes = {f.name: f.dtype for f in fields}
    rules += [_typed(_from_check(c, None, None), dtypes) for c in schema.checks]
    schema_obj = SchemaObject(
        name=object_name,
        topic=topic or object_name,
        fields=tuple(fields),
        rules=_dedupe(rules),
        description=schema.description,
    )
    team = Owner(team=owner) if isinstance(owner, str) else owner or Owner()
    ir = Contract(contract_id, version, status, "", (schema_obj,), name=name, owner=team)
    return dataclasses.replace(ir, sha256=ir_sha256(ir))


def _schema_rule(field: Field, suffix: str, op: Op, dimension: str) -> Rule:
    check = check_label(op, (), field.dtype)
    return Rule(f"{field.name}:{suffix}", op, (), check, field.name, dimension=dimension, source="pandera")


def _from_check(check: Any, column: str | None, dtype: pl.DataType | None) -> Rule:
    where = f"column {column!r}" if column else "the DataFrameSchema"
    label = check.error or check.name or repr(check)
    if check.groupby is not None or check.groups is not None or check.element_wise:
        raise UnsupportedRuleError(f"check {label!r} on {where}: groupby/element-wise checks are not supported")
    severity = Severity.WARNING if check.raise_warning else Severity.ERROR
    stats = check.statistics or {}
    if MARKER in stats:
        return _from_marker(stats[MARKER], severity, dtype)
    fn = getattr(check, "_check_fn", None)  # schemas deep-copy checks: compare the dispatcher by name
    builtin = isinstance(fn, Dispatcher) and fn.__name__ == check.name in BaseCheck.CHECK_FUNCTION_REGISTRY
    if check.name in BUILTINS and builtin and column is not None:
        if not check.ignore_na:
            raise UnsupportedRuleError(f"check {label!r} on {where}: ignore_na=False is not supported")
        op, keys = BUILTINS[check.name]
        if op is Op.STR_LENGTH and stats.get("exact_value") is not None:
            args: tuple[Any, ...] = (stats["exact_value"], stats["exact_value"])
        elif op in (Op.ISIN, Op.NOTIN):
            args = (tuple(stats[keys[0]]),)
        else:
            args = tuple(stats.get(k) for k in keys)
        return Rule(f"{column}:{op.value}", op, args, check_label(op, args, dtype), column, severity, source="pandera")
    raise UnsupportedRuleError(
        f"check {label!r} on {where} is a custom pandera check; only the built-in checks "
        f"({', '.join(sorted(BUILTINS))}) can be read into a contract"
    )


def _from_marker(spec: dict[str, Any], severity: Severity, dtype: pl.DataType | None) -> Rule:
    op = Op(spec["op"])
    raw = spec["args"]
    args = (expressions.parse_expression(raw),) if op is Op.EXPRESSION else tuple(raw)
    if op in (Op.MISSING, Op.ISIN, Op.NOTIN):
        args = (tuple(args[0]),)
    t = spec["threshold"]
    value = tuple(t["value"]) if isinstance(t["value"], (list, tuple)) else t["value"]
    threshold = Threshold(t["operator"], value, Unit(t["unit"]))
    column = spec.get("column")
    return Rule(
        str(spec["name"]),
        op,
        args,
        check_label(op, args, dtype),
        column,
        severity,
        threshold,
        source="pandera",
    )


def _typed(rule: Rule, dtypes: dict[str, pl.DataType]) -> Rule:
    """An expression's date literals, written as ISO text in the schema, read back in their columns' types
    (as the contract loader read them)."""
    if rule.op is not Op.EXPRESSION:
        return rule
    node = expressions.type_literals(rule.args[0], dtypes.get, temporal_value)
    return dataclasses.replace(rule, args=(node,))


def _dedupe(rules: list[Rule]) -> tuple[Rule, ...]:
    seen: dict[str, int] = {}
    out = []
    for r in rules:
        n = seen.get(r.name, 0)
        seen[r.name] = n + 1
        out.append(r if n == 0 else dataclasses.replace(r, name=f"{r.name}#{n + 1}"))
    return tuple(out)


def _polars_dtype(dtype: Any, column: str) -> pl.DataType:
    t = getattr(dtype, "type", None)
    if t is None:
        raise UnsupportedRuleError(f"column {column!r} has no polars dtype")
    return t() if isinstance(t, type) else t  # type: ignore[no-any-return]


def _logical_type(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "integer"
    if dtype.is_numeric():
        return "number"
    if dtype == pl.Boolean:
        return "boolean"
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "timestamp"
    if isinstance(dtype, (pl.List, pl.Array)):
        return "array"
    if isinstance(dtype, pl.Struct):
        return "object"
    return "string"


def ir_sha256(contract: Contract) -> str:
    """sha256 of a canonical JSON rendering of a contract's identity and rule IR."""
    doc = {
        "id": contract.id,
        "version": contract.version,
        "status": contract.status,
        "name": contract.name,
        "domain": contract.domain,
        "owner": contract.owner.as_dict(),
        "schemas": [
            {
                "name": s.name,
                "topic": s.topic,
                "fields": [
                    [
                        f.name,
                        f.logical_type,
                        str(f.dtype),
                        f.required,
                        f.unique,
                        f.primary_key,
                        f.classification,
                    ]
                    for f in s.fields
                ],
                "rules": [
                    {
                        "name": r.name,
                        "op": r.op.value,
                        "args": jsonable(r.args),
                        "check": r.check,
                        "column": r.column,
                        "severity": r.severity.value,
                        "threshold": [
                            r.threshold.operator,
                            jsonable(r.threshold.value),
                            r.threshold.unit.value,
                        ],
                        "dimension": r.dimension,
                    }
                    for r in s.rules
                ],
            }
            for s in contract.schemas
        ],
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def load_pandera_object(spec: str) -> Any:
    """Import ``"package.module:attr"`` (``attr`` may be dotted) and return the object.

    This **imports and runs the module's code**: use it only for trusted,
    reviewed code, and only when pandera-native contracts were explicitly enabled.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ContractError(f"{spec!r} is not of the form 'package.module:attribute'")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ContractError(f"cannot load pandera object {spec!r}: {exc}") from None
    is_model = isinstance(obj, type) and hasattr(obj, "to_schema")
    if not (is_model or isinstance(obj, pa.DataFrameSchema)):
        raise ContractError(f"{spec!r} is a {type(obj).__name__}, not a pandera DataFrameSchema or DataFrameModel")
    return obj
