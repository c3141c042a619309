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
    │   ├── UnsupportedRuleError      a rule kind, metric or custom implementation we do not run
    │   │   ├── ExpressionError       a custom/expression rule outside the safe grammar (also a ValueError)
    │   │   └── SqlRuleError          a SQL rule outside the allow-list (one SELECT over the bound object)
    │   ├── UnknownSchemaError        no such schema object or field in a contract (also a KeyError)
    │   └── BackendNotFoundError      no backend registered to run a contract (validate, pandera)
    ├── DataFormatError               an input file cannot be read as a table
    ├── BrokerError                   a Kafka broker cannot be started or reached
    │   └── TransportError            a Kafka client operation failed (poll, commit)
    │       └── CommitRefusedError    the group refused a commit (a rebalance is in progress)
    ├── SettingsError                 a configuration value is invalid
    ├── ProfileError                  a data profile is corrupt, of another contract or of another version
    ├── ArchiveError                  the audit archive cannot be opened or written (locked, corrupt)
    ├── EventError                    a quality event cannot be built or read (also a ValueError)
    │   └── EventDataError            an event's data is not a JSON object (also a TypeError)
    └── ThresholdBreach               raised inside a pandera check whose metric breaks its threshold;
                                      pandera reports it as a failure case, it never reaches callers

Where a built-in exception was raised before, the subclass also derives from it
(``except KeyError`` / ``except ValueError`` keep working).
"""

from __future__ import annotations

__all__ = [
    "ArchiveError",
    "BackendNotFoundError",
    "BrokerError",
    "CommitRefusedError",
    "ContractError",
    "ContractSchemaError",
    "ContractSyntaxError",
    "DataFormatError",
    "EventDataError",
    "EventError",
    "ExpressionError",
    "ProfileError",
    "SettingsError",
    "SqlRuleError",
    "StreamsError",
    "ThresholdBreach",
    "TransportError",
    "UnknownSchemaError",
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


class ExpressionError(UnsupportedRuleError, ValueError):
    """The text is not an allowed expression; the message says what is allowed."""


class SqlRuleError(UnsupportedRuleError):
    """A SQL rule outside the allow-list (the message says what and why)."""


class UnknownSchemaError(ContractError, KeyError):
    """A contract has no schema object (or a schema object no field) of the name asked for.

    Also a :class:`KeyError`, which is what was raised before; ``str(error)`` is the
    message itself (not ``KeyError``'s quoted repr).
    """

    def __str__(self) -> str:
        return Exception.__str__(self)


class BackendNotFoundError(ContractError):
    """No backend is registered for a kind of contract execution (see :mod:`streams.contracts.backends`)."""


class DataFormatError(StreamsError):
    """An input data file cannot be read (unknown extension, corrupt file)."""


class BrokerError(StreamsError):
    """A Kafka broker cannot be started or reached."""


class SettingsError(StreamsError):
    """A configuration value is invalid."""


class EventError(StreamsError, ValueError):
    """A quality event cannot be built (bad arguments) or read (a tombstone, an unknown type,
    wrong attributes). Also a :class:`ValueError`, which is what was raised before."""


class EventDataError(EventError, TypeError):
    """A quality event's data is not a JSON object. Also a :class:`TypeError`, as before."""


class ThresholdBreach(StreamsError):
    """Raised by a frame-level pandera check whose metric breaks its threshold (see
    :mod:`streams.validation.pandera`); pandera turns it into a failure case."""


class TransportError(BrokerError):
    """A Kafka client operation (poll, commit) failed; the cause is the client's own exception."""


class CommitRefusedError(TransportError):
    """The consumer group refused an offset commit, typically because a rebalance is in progress."""


class ProfileError(StreamsError):
    """A data profile (reference or window) cannot be used.

    ``reason`` says why, as data: ``corrupt``, ``format_version``, ``contract``,
    ``schema``, ``binning`` or ``infinite`` (reference data holding +/-inf, or values whose spread overflows
    float64); ``path``
    names the file when there is one.
    """

    def __init__(self, message: str, *, reason: str, path: str | None = None) -> None:
        self.message = message
        self.reason = reason
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class ArchiveError(StreamsError):
    """The audit archive of quality events cannot be opened or written (another archiver holds it, a corrupt file)."""
