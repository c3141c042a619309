"""quality-streams: data contracts enforced on Kafka streams for production ML.

The public API is what this module exports (``__all__``, checked against the module's
actual public names by ``tests/unit/test_exported_members.py``); everything else is internal.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING

from streams.contracts.loader import lint_contract, load_contract, load_contracts, parse_contract
from streams.contracts.model import Classification, Contract, Field, Owner, Rule, SchemaObject, Severity, Threshold
from streams.errors import (
    ArchiveError,
    BackendNotFoundError,
    BrokerError,
    CommitRefusedError,
    ContractError,
    ContractSchemaError,
    ContractSyntaxError,
    DataFormatError,
    EventDataError,
    EventError,
    ExpressionError,
    ProfileError,
    SettingsError,
    SqlRuleError,
    StreamsError,
    ThresholdBreach,
    TransportError,
    UnknownSchemaError,
    UnsupportedRuleError,
)

if _TYPE_CHECKING:  # for type checkers; at run time on first use (``_LAZY``)
    from streams.settings import Mode, Settings

__version__ = "0.1.0"

__all__ = [
    "ArchiveError",
    "BackendNotFoundError",
    "BrokerError",
    "Classification",
    "CommitRefusedError",
    "Contract",
    "ContractError",
    "ContractSchemaError",
    "ContractSyntaxError",
    "DataFormatError",
    "EventDataError",
    "EventError",
    "ExpressionError",
    "Field",
    "Mode",
    "Owner",
    "ProfileError",
    "Rule",
    "SchemaObject",
    "Settings",
    "SettingsError",
    "Severity",
    "SqlRuleError",
    "StreamsError",
    "Threshold",
    "ThresholdBreach",
    "TransportError",
    "UnknownSchemaError",
    "UnsupportedRuleError",
    "ValidationReport",
    "__version__",
    "lint_contract",
    "load_contract",
    "load_contracts",
    "parse_contract",
]

#: public names imported on first use only (the report pulls in the validation engine; the settings,
#: pydantic-settings, ~0.1 s, which lint and validate never read)
_LAZY = {
    "Mode": "streams.settings",
    "Settings": "streams.settings",
    "ValidationReport": "streams.validation.report",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'streams' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
