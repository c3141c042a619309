"""The ``qstreams.*`` custom properties this package reads from a contract file.

Schema object level (ODCS ``customProperties`` of the schema object)::

    customProperties:
      - property: qstreams.reference          # the reference profile, relative to the contract file
        value: references/card_transactions.qsref
      - property: qstreams.prediction         # a prediction contract: which fields are what
        value: {score: score, label: predicted_label, modelVersion: model_version, positiveLabel: fraud}

Property level (``customProperties`` of one property)::

    customProperties:
      - property: qstreams.drift
        value: {method: psi, threshold: 0.2, minCount: 100}

The contract is parsed with ``yaml.safe_load``: values are data, never code. Errors are
:class:`~streams.errors.ContractError` with the contract path.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from streams.errors import ContractError
from streams.profiles.spec import PredictionSpec

if TYPE_CHECKING:
    from streams.contracts.model import Contract

__all__ = ["drift_overrides", "prediction_spec", "reference_path", "schema_properties"]

REFERENCE = "qstreams.reference"
PREDICTION = "qstreams.prediction"
DRIFT = "qstreams.drift"


def _document(contract: Contract) -> dict[str, Any]:
    if contract.document is not None:  # the loader kept the composed document: no second read and parse
        return contract.document.data
    if contract.path is None:
        return {}
    try:
        data = yaml.safe_load(Path(contract.path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(
            f"cannot re-read the contract for its custom properties: {exc}", path=contract.path
        ) from exc
    return data if isinstance(data, dict) else {}


def _custom(node: Mapping[str, Any]) -> dict[str, Any]:
    items = node.get("customProperties") or []
    out: dict[str, Any] = {}
    if isinstance(items, list):
        for item in items:
            if isinstance(item, Mapping) and isinstance(item.get("property"), str):
                out[item["property"]] = item.get("value")
    return out


def _schema_node(contract: Contract, schema: str) -> Mapping[str, Any]:
    for node in _document(contract).get("schema") or []:
        if isinstance(node, Mapping) and schema in (node.get("name"), node.get("physicalName")):
            return node
    return {}


def schema_properties(contract: Contract, schema: str) -> dict[str, Any]:
    """The schema object's custom properties, ``{property: value}``."""
    return _custom(_schema_node(contract, schema))


def reference_path(contract: Contract, schema: str) -> Path | None:
    """The reference profile named by ``qstreams.reference``, resolved against the contract's directory."""
    value = schema_properties(contract, schema).get(REFERENCE)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ContractError(f"{REFERENCE} must be a file path (a string), not {value!r}", path=contract.path)
    path = Path(value)
    if not path.is_absolute() and contract.path is not None:
        path = Path(contract.path).parent / path
    return path


def prediction_spec(contract: Contract, schema: str) -> PredictionSpec | None:
    """The ``qstreams.prediction`` mapping of a prediction contract, checked against its fields."""
    value = schema_properties(contract, schema).get(PREDICTION)
    if value is None:
        return None
    try:
        spec = PredictionSpec.from_dict(value)
    except ValueError as exc:
        raise ContractError(str(exc), path=contract.path) from None
    columns = set(contract.schema(schema).columns)
    for key, name in (("score", spec.score), ("label", spec.label), ("modelVersion", spec.model_version)):
        if name is not None and name not in columns:
            raise ContractError(
                f"{PREDICTION}.{key} names {name!r}, which is not a property of schema object {schema!r}",
                path=contract.path,
            )
    return spec


def drift_overrides(contract: Contract, schema: str) -> dict[str, dict[str, Any]]:
    """Per-field ``qstreams.drift`` settings, ``{field: {method, threshold, minCount}}``."""
    out: dict[str, dict[str, Any]] = {}
    for prop in _schema_node(contract, schema).get("properties") or []:
        if not isinstance(prop, Mapping):
            continue
        value = _custom(prop).get(DRIFT)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise ContractError(
                f"{DRIFT} of property {prop.get('name')!r} must be a mapping such as {{method: psi, threshold: 0.2}}",
                path=contract.path,
            )
        out[str(prop.get("name"))] = dict(value)
    return out
