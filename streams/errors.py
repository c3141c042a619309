"""Exceptions raised by quality-streams.

Bad *data* never raises: records that break a contract become failing rows in a
:class:`~streams.validation.report.ValidationReport`, and messages that cannot be
decoded become dead-letter records. Exceptions are for bad *configuration*: a
contract that cannot be loaded, a broker that cannot be reached, a wrong setting.

Every exception derives from :class:`StreamsError`::

    StreamsError
    ├── ContractError                 a contract cannot be used
    │   ├── ContractSyntaxError       malformed YAML (file:line)
    │   ├── ContractSchemaError       the document breaks the ODCS JSON Schema (file:line)
    │   └── UnsupportedRuleError      a rule kind, metric or custom implementation we do not run
    ├── DataFormatError               an input file cannot be read as a table
    ├── BrokerError                   a Kafka broker cannot be started or reached
    ├── SettingsError                 a configuration value is invalid
    └── ProfileError                  a data profile is corrupt, of another contract or of another version
"""

from __future__ import annotations

__all__ = [
    "BrokerError",
    "ContractError",
    "ContractSchemaError",
    "ContractSyntaxError",
    "DataFormatError",
    "ProfileError",
    "SettingsError",
    "StreamsError",
    "UnsupportedRuleError",
]


class StreamsError(Exception):
    """Base class of every error raised by quality-streams."""


class ContractError(StreamsError):
    """A contract cannot be loaded or compiled.

    ``path`` and ``line`` locate the problem in the contract file when known;
    ``str(error)`` renders as ``path:line: message`` like a compiler diagnostic.
    """

    def __init__(
        self, message: str, *, path: str | None = None, line: int | None = None, field: str | None = None
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.field = field
        super().__init__(self.location_prefix() + message)

    def location_prefix(self) -> str:
        if self.path is None:
            return ""
        return f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "


class ContractSyntaxError(ContractError):
    """The contract file is not well-formed YAML."""


class ContractSchemaError(ContractError):
    """The contract document does not conform to the ODCS v3 JSON Schema."""


class UnsupportedRuleError(ContractError):
    """A quality rule, metric, operator or custom implementation is not supported."""


class DataFormatError(StreamsError):
    """An input data file cannot be read (unknown extension, corrupt file)."""


class BrokerError(StreamsError):
    """A Kafka broker cannot be started or reached."""


class SettingsError(StreamsError):
    """A configuration value is invalid."""


class ProfileError(StreamsError):
    """A data profile (reference or window) cannot be used.

    ``reason`` says why, as data: ``corrupt``, ``format_version``, ``contract``,
    ``schema`` or ``binning``; ``path`` names the file when there is one.
    """

    def __init__(self, message: str, *, reason: str, path: str | None = None) -> None:
        self.message = message
        self.reason = reason
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)
