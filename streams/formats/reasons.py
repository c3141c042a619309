"""What decoding yields: the reason a value could not be decoded, the formats, and the decoded batch.

:class:`DecodeReason` values are the wire values of the ``{p}errors.class`` header
(``decode.<REASON>``); do not change them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl
import pyarrow as pa

__all__ = ["MISMATCH_SCHEMA", "DeadLetter", "DecodeReason", "Decoded", "Format", "empty_frame"]

MISMATCH_SCHEMA = pl.Schema({"row": pl.UInt32, "column": pl.String, "value": pl.String})

_EMPTY: dict[tuple[tuple[str, pl.DataType], ...], pl.DataFrame] = {}


def empty_frame(schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """A frame of no row with ``schema``: a cleared copy of one built once per schema (``pl.DataFrame(schema=...)``
    parses every dtype in Python: ~170 µs for 24 columns, paid per batch on a slow feed's small batches)."""
    key = tuple(schema.items())
    frame = _EMPTY.get(key)
    if frame is None:
        if len(_EMPTY) >= 64:
            _EMPTY.clear()
        frame = _EMPTY[key] = pl.DataFrame(schema=dict(schema))
    return frame.clear()


class DecodeReason(enum.StrEnum):
    """Why a message (or one line of an NDJSON message) was dead-lettered."""

    EMPTY = "EMPTY"  # no value (tombstone), only whitespace, or no record in it
    TOO_LARGE = "TOO_LARGE"  # more than Settings.max_message_bytes
    NOT_UTF8 = "NOT_UTF8"  # not UTF-8 text (and not Arrow)
    NOT_JSON = "NOT_JSON"  # UTF-8 but not JSON
    NOT_OBJECT = "NOT_OBJECT"  # JSON, but an array or a scalar, not an object
    TRUNCATED = "TRUNCATED"  # JSON that stops in the middle of a document
    BAD_ARROW = "BAD_ARROW"  # announced or looks like Arrow IPC but cannot be read
    DUPLICATE_KEY = "DUPLICATE_KEY"  # an object repeats a key: readers disagree on its value
    TOO_DEEP = "TOO_DEEP"  # JSON nested deeper than the parser's 1024 levels
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"  # not JSON, and announced (content-type) as a format not decoded here


class Format(enum.StrEnum):
    JSON = "json"
    NDJSON = "ndjson"
    ARROW = "arrow"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message (``line`` None) or one line of an NDJSON message that could not be decoded."""

    message: int
    reason: DecodeReason
    detail: str  # one sentence, never a data value
    line: int | None = None


@dataclass(slots=True)
class Decoded:
    """The records of one batch, where each came from, and what did not decode."""

    frame: pl.DataFrame  # one column per declared field (wire dtypes), one row per record
    message: pl.Series  # UInt32 per row: index of the source message in the batch
    line: pl.Series  # UInt32 per row: line (NDJSON), row (Arrow) or 0 (one JSON object)
    formats: list[Format | None]  # per message; None when the whole message was dead-lettered
    dead: list[DeadLetter] = field(default_factory=list)
    lines: dict[int, list[bytes]] = field(default_factory=dict)  # NDJSON messages: their lines
    tables: dict[int, pa.Table] = field(default_factory=dict)  # Arrow messages: their tables
    mismatches: pl.DataFrame = field(default_factory=lambda: empty_frame(MISMATCH_SCHEMA))
    unknown_fields: dict[str, int] = field(default_factory=dict)  # field -> records carrying it
    missing_fields: dict[str, int] = field(default_factory=dict)  # declared field -> records lacking it
    type_mismatches: dict[str, int] = field(default_factory=dict)  # declared field -> wrong-typed values
    #: per record (JSON, or row of an Arrow table) with unknown or missing fields: (row, unknown names, missing
    #: names), rows ascending
    irregular: list[tuple[int, tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.unknown_fields or self.missing_fields or self.type_mismatches)
