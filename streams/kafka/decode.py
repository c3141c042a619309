"""Kafka message values to a polars frame of records, one schema object at a time, exactly.

A value is one JSON object (the common case), an NDJSON batch (header ``content-type:
application/x-ndjson``, or a value that is not one JSON document but whose first line is an
object) or an Arrow IPC stream (header ``application/vnd.apache.arrow.stream`` or the magic
``FF FF FF FF`` / ``ARROW1``). What cannot be decoded is a :class:`DeadLetter` with a
:class:`DecodeError`; the other records of the batch are unaffected.

:class:`Decoded` has a column per declared field in its *wire* dtype (Int64, Float64,
Boolean; String for strings, timestamps and dates), so the engine's conformance still
narrows and parses (an int32 overflow or a bad timestamp is a per-row ``dtype`` failure).
A value of the wrong JSON type (``"12"`` or ``13.5`` for an integer, ``12`` for a string,
``true`` for a number) is *not coerced*: it is null in the column and a row of
``mismatches``, which :func:`streams.kafka.pipeline.merge_mismatches` turns into failures
of the field's ``dtype`` rule in the engine's report, as if the engine had seen it.

Decoder choice (``benchmarks/bench_decode.py``; rows/s and ratio, medians on a shared
2-vCPU box; features: ~670-byte records, predictions: ~290 bytes; "1% bad": 1% wrong types)::

    decoder                                     features 5k     predictions 100k   features 5k, 1% bad
    orjson per message + columns (this module)  239k  1.00       333k  1.00         155k  1.00
    orjson + pl.from_dicts (lenient)            218k  0.91       509k  1.53         114k  0.74
    pl.read_ndjson(schema=) + fallback          466k  1.95      1719k  5.16         146k  0.94
    pl.read_ndjson strict (Categorical, infer)  143k  0.60       288k  0.87         104k  0.67
    pyarrow.json strict + fallback              301k  1.26       885k  2.66         139k  0.90

``pl.read_ndjson(schema=)`` wins on clean batches but is *lenient* (``12``, ``true`` or
``{...}`` in a String field become ``"12"``: a type mismatch passes) and cannot tell a
missing field from a null nor see unknown fields; made strict it is slower than orjson;
pyarrow is strict on types but blind to missing fields too. A joined-buffer reader fails
whole on one bad record, so with 1% bad records each batch pays a failed read plus the
per-message fallback. msgspec is not installed. Chosen: orjson per message (one
``loads``, a length test and one ``itemgetter`` per record; columns transposed in C by
``zip`` and built by strict ``pl.Series``; only a column holding a wrong-typed value is
checked value by value).
"""

from __future__ import annotations

import enum
import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import orjson
import polars as pl
import pyarrow as pa

from streams.contracts.model import Field, SchemaObject
from streams.kafka.headers import ARROW_STREAM, NDJSON, content_type
from streams.kafka.records import Message
from streams.validation.report import REDACTED

__all__ = ["MISMATCH_SCHEMA", "DeadLetter", "DecodeError", "Decoded", "Decoder", "Format"]

_ARROW_MAGIC = (b"\xff\xff\xff\xff", b"ARROW1")
_BOM = b"\xef\xbb\xbf"
_INT64 = (-(2**63), 2**63)
MISMATCH_SCHEMA = pl.Schema({"row": pl.UInt32, "column": pl.String, "value": pl.String})


class DecodeError(enum.StrEnum):
    """Why a message (or one line of an NDJSON message) was dead-lettered."""

    EMPTY = "EMPTY"  # no value (tombstone), only whitespace, or no record in it
    TOO_LARGE = "TOO_LARGE"  # more than Settings.max_message_bytes
    NOT_UTF8 = "NOT_UTF8"  # not UTF-8 text (and not Arrow)
    NOT_JSON = "NOT_JSON"  # UTF-8 but not JSON
    NOT_OBJECT = "NOT_OBJECT"  # JSON, but an array or a scalar, not an object
    TRUNCATED = "TRUNCATED"  # JSON that stops in the middle of a document
    BAD_ARROW = "BAD_ARROW"  # announced or looks like Arrow IPC but cannot be read


class Format(enum.StrEnum):
    JSON = "json"
    NDJSON = "ndjson"
    ARROW = "arrow"


class _Kind(enum.Enum):
    INT = "int"
    FLOAT = "float"
    STRING = "string"
    BOOL = "bool"
    OTHER = "other"  # nested or exotic declared dtypes: built leniently, the engine judges


_WIRE = {_Kind.INT: pl.Int64(), _Kind.FLOAT: pl.Float64(), _Kind.STRING: pl.String(), _Kind.BOOL: pl.Boolean()}


def _kind(dtype: pl.DataType) -> _Kind:
    if dtype.is_integer():
        return _Kind.INT
    if dtype.is_float() or isinstance(dtype, pl.Decimal):
        return _Kind.FLOAT
    if dtype == pl.Boolean:
        return _Kind.BOOL
    if dtype == pl.String or isinstance(dtype, (pl.Datetime, pl.Date, pl.Time, pl.Categorical, pl.Enum)):
        return _Kind.STRING
    return _Kind.OTHER


def _fits(kind: _Kind, x: Any) -> bool:
    t = type(x)
    if kind is _Kind.INT:
        return t is int and _INT64[0] <= x < _INT64[1]
    if kind is _Kind.FLOAT:
        return t is float or (t is int and abs(x) < 2**1023)
    if kind is _Kind.STRING:
        return t is str
    return t is bool


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message (``line`` None) or one line of an NDJSON message that could not be decoded."""

    message: int
    reason: DecodeError
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
    mismatches: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=MISMATCH_SCHEMA))
    unknown_fields: dict[str, int] = field(default_factory=dict)  # field -> records carrying it
    missing_fields: dict[str, int] = field(default_factory=dict)  # declared field -> records lacking it
    type_mismatches: dict[str, int] = field(default_factory=dict)  # declared field -> wrong-typed values

    @property
    def drifted(self) -> bool:
        return bool(self.unknown_fields or self.missing_fields or self.type_mismatches)


def _json_error(value: bytes, exc: orjson.JSONDecodeError, what: str) -> tuple[DecodeError, str]:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as bad:
        return DecodeError.NOT_UTF8, f"{what} is not valid UTF-8 ({bad.reason} at byte {bad.start})."
    if not text.strip():
        return DecodeError.EMPTY, f"{what} is blank."
    if exc.msg == "unexpected end of data":
        return DecodeError.TRUNCATED, f"{what} ends in the middle of a JSON document (at character {exc.pos})."
    return DecodeError.NOT_JSON, f"{what} is not valid JSON ({exc.msg} at character {exc.pos})."


def _not_object(value: Any, what: str) -> tuple[DecodeError, str]:
    kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
    return DecodeError.NOT_OBJECT, f"{what} is JSON {kind}, not a JSON object."


class _Batch:
    """What the hot loop accumulates: record tuples, their provenance and the result being built."""

    def __init__(self, n_messages: int) -> None:
        self.out = Decoded(pl.DataFrame(), pl.Series(), pl.Series(), [None] * n_messages)
        self.rows: list[tuple[Any, ...]] = []
        self.message: list[int] = []
        self.line: list[int] = []

    def dead(self, i: int, reason: DecodeError, text: str, line: int | None = None) -> None:
        self.out.dead.append(DeadLetter(i, reason, text, line))


class Decoder:
    """Decodes batches of messages for one schema object; build once, reuse for every batch."""

    def __init__(self, schema_obj: SchemaObject, *, max_message_bytes: int = 1_048_576, pause_gc: bool = True) -> None:
        self.schema_obj = schema_obj
        self.max_message_bytes = max_message_bytes
        self.pause_gc = pause_gc
        self.fields: tuple[Field, ...] = schema_obj.fields
        self.names = tuple(f.name for f in self.fields)
        self.kinds = tuple(_kind(f.dtype) for f in self.fields)
        self._declared = frozenset(self.names)
        self._get: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            itemgetter(*self.names) if len(self.names) > 1 else (lambda d: (d[self.names[0]],))
        )

    def decode(self, messages: Sequence[Message]) -> Decoded:
        """Decode one batch. Never raises on data: what cannot be decoded is in ``Decoded.dead``."""
        paused = self.pause_gc and gc.isenabled()
        if paused:  # the loop allocates many dicts, none cyclic: collections would only cost time
            gc.disable()
        try:
            return self._decode(messages)
        finally:
            if paused:
                gc.enable()

    def _decode(self, messages: Sequence[Message]) -> Decoded:
        loads, get, n_declared, limit = orjson.loads, self._get, len(self.names), self.max_message_bytes
        b = _Batch(len(messages))
        rows, msg_idx, line_idx, formats = b.rows, b.message, b.line, b.out.formats
        arrow: list[int] = []
        for i, m in enumerate(messages):
            v = m.value
            if not v:
                b.dead(i, DecodeError.EMPTY, "The message has no value (a tombstone or empty).")
                continue
            if len(v) > limit:
                b.dead(i, DecodeError.TOO_LARGE, f"The message value has {len(v)} bytes, more than {limit}.")
                continue
            ctype = content_type(m.headers) if m.headers else None
            if ctype == ARROW_STREAM or (v[0] in (0xFF, 0x41) and v.startswith(_ARROW_MAGIC)):
                arrow.append(i)
                continue
            if ctype == NDJSON:
                self._ndjson(b, i, v)
                continue
            try:
                d = loads(v)
            except orjson.JSONDecodeError as exc:
                self._undecodable(b, i, v, exc)
                continue
            if type(d) is not dict:
                b.dead(i, *_not_object(d, "The message value"))
                continue
            formats[i] = Format.JSON
            msg_idx.append(i)
            line_idx.append(0)
            if len(d) == n_declared:
                try:
                    rows.append(get(d))
                    continue
                except KeyError:
                    pass
            rows.append(self._irregular(b.out, d))
        parts = [self._columns(b)]
        for i in arrow:
            part = self._arrow(b, i, messages[i].value or b"")
            if part is not None:
                parts.append(part)
        return _assemble(b.out, parts)

    def _add(self, b: _Batch, d: dict[str, Any], i: int, line: int) -> None:
        b.message.append(i)
        b.line.append(line)
        if len(d) == len(self.names):
            try:
                b.rows.append(self._get(d))
                return
            except KeyError:
                pass
        b.rows.append(self._irregular(b.out, d))

    def _irregular(self, out: Decoded, d: dict[str, Any]) -> tuple[Any, ...]:
        """The declared values of a record that lacks declared fields or carries unknown ones."""
        for name in d.keys() - self._declared:
            out.unknown_fields[name] = out.unknown_fields.get(name, 0) + 1
        for name in self._declared - d.keys():
            out.missing_fields[name] = out.missing_fields.get(name, 0) + 1
        return tuple(d.get(name) for name in self.names)

    def _undecodable(self, b: _Batch, i: int, v: bytes, exc: orjson.JSONDecodeError) -> None:
        if v.startswith(_BOM):  # tolerated: retry without the byte order mark
            try:
                d = orjson.loads(v[len(_BOM) :])
            except orjson.JSONDecodeError:
                d = None
            if type(d) is dict:
                b.out.formats[i] = Format.JSON
                self._add(b, d, i, 0)
                return
        if b"\n" in v and exc.msg == "unexpected content after document":
            first = next((ln for ln in v.split(b"\n", 8) if ln.strip()), b"")
            try:
                is_object = type(orjson.loads(first)) is dict
            except orjson.JSONDecodeError:
                is_object = False
            if is_object:
                self._ndjson(b, i, v)
                return
        b.dead(i, *_json_error(v, exc, "The message value"))

    def _ndjson(self, b: _Batch, i: int, v: bytes) -> None:
        lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in v.split(b"\n")]
        found = 0
        for n, line in enumerate(lines):
            if not line.strip():
                continue
            found += 1
            what = f"Line {n} of the NDJSON message"
            try:
                d = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                b.dead(i, *_json_error(line, exc, what), n)
                continue
            if type(d) is dict:
                self._add(b, d, i, n)
            else:
                b.dead(i, *_not_object(d, what), n)
        if not found:
            b.dead(i, DecodeError.EMPTY, "The NDJSON message has no record.")
            return
        b.out.formats[i] = Format.NDJSON
        b.out.lines[i] = lines

    # -- columns ---------------------------------------------------------------------------

    def _columns(self, b: _Batch) -> _Part:
        """Transpose the record tuples (in C) and build strict wire-dtype columns; wrong-typed values become null."""
        if not b.rows:
            schema = {f.name: _WIRE.get(k, f.dtype) for f, k in zip(self.fields, self.kinds, strict=True)}
            return pl.DataFrame(schema=schema), _no_mismatches(), b.message, b.line
        series: list[pl.Series] = []
        bad: dict[str, list[Any]] = {"row": [], "column": [], "value": []}
        for f, kind, values in zip(self.fields, self.kinds, zip(*b.rows, strict=True), strict=True):
            if kind is _Kind.OTHER:
                series.append(_lenient(f, values))
                continue
            s = None
            # pl.Series(strict=True) refuses every other JSON type, except bool for a number: test that one first
            if kind not in (_Kind.INT, _Kind.FLOAT) or bool not in set(map(type, values)):
                try:
                    s = pl.Series(f.name, values, dtype=_WIRE[kind], strict=True)
                except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
                    s = None
            if s is None:  # the rare column holding a wrong-typed value: judge value by value
                kept: list[Any] = []
                for r, x in enumerate(values):
                    if x is None or _fits(kind, x):
                        kept.append(x)
                        continue
                    kept.append(None)
                    bad["row"].append(r)
                    bad["column"].append(f.name)
                    bad["value"].append(REDACTED if f.redacted else orjson.dumps(x).decode())
                    b.out.type_mismatches[f.name] = b.out.type_mismatches.get(f.name, 0) + 1
                s = pl.Series(f.name, kept, dtype=_WIRE[kind], strict=False)
            series.append(s)
        return pl.DataFrame(series), pl.DataFrame(bad, schema=MISMATCH_SCHEMA), b.message, b.line

    # -- Arrow ------------------------------------------------------------------------------

    def _arrow(self, b: _Batch, i: int, v: bytes) -> _Part | None:
        out = b.out
        try:
            buf = pa.py_buffer(v)
            table = (pa.ipc.open_file(buf) if v.startswith(b"ARROW1") else pa.ipc.open_stream(buf)).read_all()
            df = pl.from_arrow(table)
            assert isinstance(df, pl.DataFrame)
        except Exception as exc:  # any failure to read is the message's, not the batch's
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            b.dead(i, DecodeError.BAD_ARROW, f"The message value is not a readable Arrow IPC stream ({first}).")
            return None
        if df.height == 0:
            b.dead(i, DecodeError.EMPTY, "The Arrow IPC stream has no record.")
            return None
        out.formats[i] = Format.ARROW
        out.tables[i] = table
        n = df.height
        for name in df.columns:
            if name not in self._declared:
                out.unknown_fields[name] = out.unknown_fields.get(name, 0) + n
        cols: list[pl.Expr] = []
        bad = [_no_mismatches()]
        for f, kind in zip(self.fields, self.kinds, strict=True):
            wire = _WIRE.get(kind, f.dtype)
            if f.name not in df.columns:
                out.missing_fields[f.name] = out.missing_fields.get(f.name, 0) + n
                cols.append(pl.lit(None, dtype=wire).alias(f.name))
                continue
            value = _arrow_value(pl.col(f.name), df.schema[f.name], f.dtype, kind)
            if value is None:  # every non-null value is of the wrong type
                value = pl.lit(None, dtype=wire)
            shown = pl.lit(REDACTED) if f.redacted else pl.col(f.name).cast(pl.String, strict=False)
            mismatch = pl.col(f.name).is_not_null() & value.is_null()
            wrong = (
                df.lazy()
                .select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"), shown.alias("value"), mismatch.alias("m"))
                .filter(pl.col("m"))
                .select("row", pl.lit(f.name).alias("column"), pl.col("value").fill_null("<unprintable>"))
                .collect()
            )
            if wrong.height:
                out.type_mismatches[f.name] = out.type_mismatches.get(f.name, 0) + wrong.height
                bad.append(wrong)
            cols.append(value.alias(f.name))
        return df.select(cols), pl.concat(bad, how="vertical"), [i] * n, list(range(n))


_Part = tuple[pl.DataFrame, pl.DataFrame, list[int], list[int]]


def _no_mismatches() -> pl.DataFrame:
    return pl.DataFrame(schema=MISMATCH_SCHEMA)


def _assemble(out: Decoded, parts: list[_Part]) -> Decoded:
    frames, mism, msgs, lines, offset = [], [], [], [], 0
    for frame, mismatches, msg_idx, line_idx in parts:
        frames.append(frame)
        if mismatches.height:
            mism.append(mismatches.with_columns(pl.col("row") + offset))
        msgs += msg_idx
        lines += line_idx
        offset += frame.height
    out.frame = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
    out.message = pl.Series("message", msgs, dtype=pl.UInt32)
    out.line = pl.Series("line", lines, dtype=pl.UInt32)
    if mism:
        out.mismatches = pl.concat(mism, how="vertical")
    return out


def _lenient(f: Field, values: Sequence[Any]) -> pl.Series:
    try:
        return pl.Series(f.name, values, dtype=f.dtype, strict=False)
    except Exception:  # the engine reports every value of an unbuildable column as a dtype failure
        return pl.Series(f.name, [None if x is None else orjson.dumps(x).decode() for x in values], dtype=pl.String)


def _arrow_value(c: pl.Expr, src: pl.DataType, declared: pl.DataType, kind: _Kind) -> pl.Expr | None:
    """An Arrow column as its field's wire dtype, null where a value does not fit; None if no value can."""
    if kind is _Kind.OTHER:
        return c.cast(declared, strict=False)
    if src == pl.Null:
        return c.cast(_WIRE[kind])
    if kind is _Kind.INT and src.is_integer():
        return c.cast(pl.Int64, strict=False)
    if kind is _Kind.FLOAT and (src.is_integer() or src.is_float() or isinstance(src, pl.Decimal)):
        return c.cast(pl.Float64, strict=False)
    if kind is _Kind.BOOL and src == pl.Boolean:
        return c
    if kind is _Kind.STRING:
        if src == pl.String or isinstance(src, (pl.Categorical, pl.Enum)):
            return c.cast(pl.String)
        if isinstance(declared, pl.Datetime) and isinstance(src, pl.Datetime):
            return c.dt.to_string("%Y-%m-%dT%H:%M:%S%.f%:z" if src.time_zone else "%Y-%m-%dT%H:%M:%S%.f")
        if isinstance(declared, pl.Date) and isinstance(src, pl.Date):
            return c.dt.to_string("%Y-%m-%d")
    return None
