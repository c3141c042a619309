"""IR -> pandera: a schema object as a ``pandera.polars.DataFrameSchema``.

Each rule sits where :func:`streams.validation.predicates.rule_layout` puts it, so
pandera's ``check_number`` matches the fused engine's (see :mod:`streams.validation.pandera`).
Governance metadata goes into ``metadata=``.
"""

from __future__ import annotations

from typing import Any

import pandera.polars as pa

from streams.contracts.model import Contract, Field, Rule, SchemaObject
from streams.errors import ContractError
from streams.validation.pandera.checks import column_check, frame_check
from streams.validation.predicates import rule_layout

__all__ = ["to_pandera"]


def to_pandera(schema_obj: SchemaObject, contract: Contract | None = None) -> pa.DataFrameSchema:
    """The schema object as a ``pandera.polars.DataFrameSchema`` (see the module docstring)."""
    declared = {f.name: f for f in schema_obj.fields}
    nullable = dict.fromkeys(declared, True)
    unique = dict.fromkeys(declared, False)
    column_checks: dict[str, list[pa.Check]] = {name: [] for name in declared}
    frame_checks: list[pa.Check] = []
    for slot in rule_layout(schema_obj):
        rule = slot.rule
        if slot.placement == "nullable":
            nullable[str(rule.column)] = False
        elif slot.placement == "unique":
            unique[str(rule.column)] = True
        elif slot.placement in ("column", "frame"):
            try:
                if slot.placement == "column":
                    column_checks[str(rule.column)].append(column_check(rule))
                else:
                    frame_checks.append(frame_check(rule, schema_obj.name))
            except (TypeError, ValueError) as exc:
                raise ContractError(f"rule {rule.name!r} cannot be expressed in pandera: {exc}") from exc
    columns = {
        f.name: pa.Column(
            f.dtype,
            checks=column_checks[f.name],
            nullable=nullable[f.name],
            unique=unique[f.name],
            required=f.required,  # an absent optional field passes, as in the engine
            name=f.name,
            description=f.description,
            metadata=_field_metadata(f, schema_obj),
        )
        for f in schema_obj.fields
    }
    return pa.DataFrameSchema(
        columns,
        checks=frame_checks,
        title=schema_obj.name,
        description=schema_obj.description,
        metadata=_schema_metadata(schema_obj, contract),
    )


def _rule_metadata(rule: Rule) -> dict[str, Any]:
    return {
        "op": rule.op.value,
        "check": rule.check,
        "column": rule.column,
        "severity": rule.severity.value,
        "dimension": rule.dimension,
        "threshold": rule.threshold.describe(),
        "gates_rows": rule.gates_rows,
        "source": rule.source,
        "description": rule.description,
    }


def _field_metadata(f: Field, schema_obj: SchemaObject) -> dict[str, Any]:
    return {
        "logical_type": f.logical_type,
        "required": f.required,
        "primary_key": f.primary_key,
        "classification": f.classification.value if f.classification else None,
        "redacted": f.redacted,
        "rules": {r.name: _rule_metadata(r) for r in schema_obj.rules if r.column == f.name},
    }


def _schema_metadata(schema_obj: SchemaObject, contract: Contract | None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "schema": {"name": schema_obj.name, "topic": schema_obj.topic},
        "rules": {r.name: _rule_metadata(r) for r in schema_obj.rules},
    }
    if contract is not None:
        meta["contract"] = {
            "id": contract.id,
            "version": contract.version,
            "sha256": contract.sha256,
            "status": contract.status,
            "name": contract.name,
            "domain": contract.domain,
            "owner": contract.owner.as_dict(),
        }
    return meta
