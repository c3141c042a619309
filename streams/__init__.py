"""quality-streams: data contracts enforced on Kafka streams for production ML.

The public API is what this module exports; everything else is internal.
"""

from __future__ import annotations

from streams.contracts.loader import lint_contract, load_contract, load_contracts, parse_contract
from streams.contracts.model import Classification, Contract, Field, Owner, Rule, SchemaObject, Severity, Threshold
from streams.errors import (
    BrokerError,
    ContractError,
    ContractSchemaError,
    ContractSyntaxError,
    DataFormatError,
    SettingsError,
    StreamsError,
    UnsupportedRuleError,
)
from streams.settings import Mode, Settings

__version__ = "0.1.0"

__all__ = [
    "BrokerError",
    "Classification",
    "Contract",
    "ContractError",
    "ContractSchemaError",
    "ContractSyntaxError",
    "DataFormatError",
    "Field",
    "Mode",
    "Owner",
    "Rule",
    "SchemaObject",
    "Settings",
    "SettingsError",
    "Severity",
    "StreamsError",
    "Threshold",
    "UnsupportedRuleError",
    "ValidationReport",
    "__version__",
    "lint_contract",
    "load_contract",
    "load_contracts",
    "parse_contract",
]


def __getattr__(name: str) -> object:
    # the report pulls in the validation engine; import it on first use only
    if name == "ValidationReport":
        from streams.validation.report import ValidationReport

        return ValidationReport
    raise AttributeError(f"module 'streams' has no attribute {name!r}")
