"""Message values to a polars frame of records, one schema object at a time, exactly.

A value is one JSON object (the common case), an NDJSON batch (header ``content-type:
application/x-ndjson``, or a value that is not one JSON document but whose first line is an
object) or an Arrow IPC stream (header ``application/vnd.apache.arrow.stream`` or the magic
``FF FF FF FF`` / ``ARROW1``). What cannot be decoded is a :class:`DeadLetter` with a
:class:`DecodeReason`; the other records of the batch are unaffected.

:class:`Decoded` has a column per declared field in its *wire* dtype (Int64, Float64,
Boolean; String for strings, timestamps and dates), so the engine's conformance still
narrows and parses (an int32 overflow or a bad timestamp is a per-row ``dtype`` failure).
JSON has one number type: an integer field takes a number with a zero fractional part
(``517.0``, as pandas writes NaN-able integer columns and JSON Schema's ``integer`` allows)
within int64. A value of the wrong JSON type (``"12"`` or ``13.5`` for an integer, ``12`` for a string,
``true`` for a number) is *not coerced*: it is null in the column and a row of
``mismatches``, which :func:`streams.pipeline.verdicts.merge_mismatches` turns into failures
of the field's ``dtype`` rule in the engine's report, as if the engine had seen it.

Two decoders, one result. :class:`MessageDecoder` reads message by message with orjson (one
``loads``, a duplicate-key test, a length test and one ``itemgetter`` per record; columns transposed
in C by ``zip`` and built by strict ``pl.Series``; only a column holding a wrong-typed value is
checked value by value). :class:`Decoder` (what the pipeline uses) first reads the batch's
one-object JSON messages in bulk with ``pl.read_ndjson`` and keeps a row only when writing it
back gives the message's bytes (:mod:`streams.formats.bulk`: a lenient, null-blind reader made
exact by that proof); the other messages go through :class:`MessageDecoder`, and the rows are
put back in message order. ``tests/unit/formats/test_bulk_differential.py`` holds the two equal;
``benchmarks/bench_decode.py`` compares them (and, with ``--candidates``, the readers they were
chosen among: lenient ``pl.read_ndjson``/pyarrow with fallback, ``pl.from_dicts``).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any, Protocol, cast

import numpy as np
import orjson
import polars as pl

from streams.contracts.model import Field, SchemaObject
from streams.formats.arrow import ARROW_MAGIC, decode_arrow, ndjson_lines
from streams.formats.bulk import BulkReader, interleave
from streams.formats.columns import (
    WIRE,
    Batch,
    Kind,
    Part,
    assemble,
    fits,
    fits_list,
    json_error,
    kind_of,
    lenient,
    nested_getter,
    no_mismatches,
    not_object,
    shown_value,
    value_at,
    wire_value,
)
from streams.formats.content_types import ARROW_STREAM, NDJSON, Headers, content_type, textual
from streams.formats.jsonvalues import has_duplicate_keys
from streams.formats.reasons import MISMATCH_SCHEMA, Decoded, DecodeReason, Format, empty_frame
from streams.validation.report import REDACTED

__all__ = ["Decoder", "MessageDecoder", "Payload", "Value"]

_BOM = b"\xef\xbb\xbf"
_BLANKS = b" \t\r\n"  # JSON's whitespace
_DUPLICATE = "{what} repeats a key in one JSON object; readers disagree on its value, so it is not forwarded."
_FORMAT_REASONS = (DecodeReason.NOT_UTF8, DecodeReason.NOT_JSON, DecodeReason.TRUNCATED)
_UNSUPPORTED = (
    "The message value is announced as {ctype} (content-type header), a format this worker does not decode "
    "(it reads JSON, NDJSON and Arrow IPC), and it is not JSON either."
)
_FRAMED = (
    " It starts like a Schema Registry framed record (magic byte 0, schema id {schema_id}): Avro, Protobuf and "
    "JSON Schema framed records are not decoded."
)


class Payload(Protocol):
    """What the decoder reads of a message: its value and headers (a pipeline ``Message`` is one)."""

    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Headers: ...


class Value:
    """A bare value with no headers (a line of a local file): a :class:`Payload` with no Kafka in it."""

    __slots__ = ("value",)
    headers: Headers = ()

    def __init__(self, value: bytes | None) -> None:
        self.value = value


class MessageDecoder:
    """Decodes batches of messages for one schema object, message by message; build once, reuse for every batch.

    The reference the bulk :class:`Decoder` is tested against, and its path for the messages it cannot prove."""

    def __init__(self, schema_obj: SchemaObject, *, max_message_bytes: int = 1_048_576, pause_gc: bool = True) -> None:
        self.schema_obj = schema_obj
        self.max_message_bytes = max_message_bytes
        self.pause_gc = pause_gc
        self.fields: tuple[Field, ...] = schema_obj.fields
        self.names = tuple(f.name for f in self.fields)
        self.kinds = tuple(kind_of(f.dtype) for f in self.fields)
        # nested fields are named by their dotted path (a property name never holds a dot)
        self._paths = tuple(tuple(n.split(".")) for n in self.names)
        self._top = tuple(dict.fromkeys(p[0] for p in self._paths))
        self._declared = frozenset(self._top)
        self._nested = any(len(p) > 1 for p in self._paths)
        self._get: Callable[[dict[str, Any]], tuple[Any, ...]]
        if self._nested:
            self._get = nested_getter(self._paths)
        elif len(self.names) > 1:
            self._get = itemgetter(*self.names)
        else:
            self._get = lambda d: (d[self.names[0]],)

    def decode(self, messages: Sequence[Payload]) -> Decoded:
        """Decode one batch. Never raises on data: what cannot be decoded is in ``Decoded.dead``."""
        paused = self.pause_gc and gc.isenabled()
        if paused:  # the loop allocates many dicts, none cyclic: collections would only cost time
            gc.disable()
        try:
            return self._decode(messages)
        finally:
            if paused:
                gc.enable()

    def record(self, m: Payload) -> dict[str, Any] | None:
        """The record of ``m`` when :meth:`decode` reads it as one JSON object with no dead letter (the common message:
        not announced as NDJSON or Arrow, not Arrow IPC, within the size limit, one JSON object with each key once, no
        byte order mark): the branch of ``_loop`` that reads such a message, parsed once; None for every other message
        (NDJSON, Arrow, a dead letter, …): read it with :meth:`decode`. The labels join reads a message through it
        (``streams.performance.binding.records``): ~40 times cheaper than decoding a batch of one message."""
        v = m.value
        if not v or len(v) > self.max_message_bytes or (v[0] in (0xFF, 0x41) and v.startswith(ARROW_MAGIC)):
            return None
        if m.headers and content_type(m.headers) in (ARROW_STREAM, NDJSON):
            return None
        try:
            d = orjson.loads(v)
        except orjson.JSONDecodeError:
            return None
        return d if type(d) is dict and not has_duplicate_keys(v, d) else None

    def _decode(self, messages: Sequence[Payload]) -> Decoded:
        b = Batch(len(messages))
        arrow = self._loop(messages, range(len(messages)), b)
        return self._assemble(messages, b, [self._columns(b)], arrow)

    def _assemble(self, messages: Sequence[Payload], b: Batch, parts: list[Part], arrow: list[int]) -> Decoded:
        for i in arrow:
            part = decode_arrow(b, i, messages[i].value or b"", self.fields, self.kinds, self._declared)
            if part is not None:
                parts.append(part)
        return assemble(b.out, parts)

    def _loop(self, messages: Sequence[Payload], todo: Iterable[int], b: Batch) -> list[int]:
        """Decode messages ``todo`` (ascending) one by one into ``b``; returns the Arrow ones, decoded last."""
        loads, get, n_declared, limit = orjson.loads, self._get, len(self._top), self.max_message_bytes
        rows, msg_idx, line_idx, formats = b.rows, b.message, b.line, b.out.formats
        arrow: list[int] = []
        for i in todo:
            m = messages[i]
            v = m.value
            if not v:
                b.dead(i, DecodeReason.EMPTY, "The message has no value (a tombstone or empty).")
                continue
            if len(v) > limit:
                b.dead(i, DecodeReason.TOO_LARGE, f"The message value has {len(v)} bytes, more than {limit}.")
                continue
            ctype = content_type(m.headers) if m.headers else None
            if ctype == ARROW_STREAM or (v[0] in (0xFF, 0x41) and v.startswith(ARROW_MAGIC)):
                arrow.append(i)
                continue
            if ctype == NDJSON:
                self._ndjson(b, i, v)
                continue
            try:
                d = loads(v)
            except orjson.JSONDecodeError as exc:
                self._undecodable(b, i, v, exc, ctype)
                continue
            if type(d) is not dict:
                b.dead(i, *not_object(d, "The message value"))
                continue
            if has_duplicate_keys(v, d):
                b.dead(i, DecodeReason.DUPLICATE_KEY, _DUPLICATE.format(what="The message value"))
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
            rows.append(self._irregular(b.out, d, len(rows)))
        return arrow

    def _add(self, b: Batch, d: dict[str, Any], i: int, line: int) -> None:
        b.message.append(i)
        b.line.append(line)
        if len(d) == len(self._top):
            try:
                b.rows.append(self._get(d))
                return
            except KeyError:
                pass
        b.rows.append(self._irregular(b.out, d, len(b.rows)))

    def _irregular(self, out: Decoded, d: dict[str, Any], row: int) -> tuple[Any, ...]:
        """The declared values of a record (row ``row`` of the JSON rows) that lacks declared fields or carries
        unknown ones."""
        unknown, missing = d.keys() - self._declared, self._declared - d.keys()
        for name in unknown:
            out.unknown_fields[name] = out.unknown_fields.get(name, 0) + 1
        for name in missing:
            out.missing_fields[name] = out.missing_fields.get(name, 0) + 1
        if unknown or missing:
            out.irregular.append((row, tuple(sorted(unknown)), tuple(sorted(missing))))
        if self._nested:
            return tuple(value_at(d, p) for p in self._paths)
        return tuple(d.get(name) for name in self.names)

    def _undecodable(self, b: Batch, i: int, v: bytes, exc: orjson.JSONDecodeError, ctype: str | None = None) -> None:
        body = v
        if v.startswith(_BOM):  # tolerated: retry without the byte order mark (one object, or NDJSON below)
            body = v[len(_BOM) :]
            try:
                d = orjson.loads(body)
            except orjson.JSONDecodeError as rest:
                d, exc = None, rest
            if type(d) is dict:
                if has_duplicate_keys(body, d):
                    b.dead(i, DecodeReason.DUPLICATE_KEY, _DUPLICATE.format(what="The message value"))
                else:
                    b.out.formats[i] = Format.JSON
                    self._add(b, d, i, 0)
                return
            if d is not None:
                b.dead(i, *not_object(d, "The message value"))
                return
        if b"\n" in body and exc.msg == "unexpected content after document":
            first = next((ln for ln in body.split(b"\n", 8) if ln.strip(_BLANKS)), b"")
            try:
                is_object = type(orjson.loads(first)) is dict
            except orjson.JSONDecodeError:
                is_object = False
            if is_object:
                self._ndjson(b, i, v)
                return
        reason, text = json_error(body, exc, "The message value")
        if reason in _FORMAT_REASONS:
            if not textual(ctype):
                reason, text = DecodeReason.UNSUPPORTED_FORMAT, _UNSUPPORTED.format(ctype=str(ctype)[:100])
            elif v[0] == 0 and len(v) > 5:
                text += _FRAMED.format(schema_id=int.from_bytes(v[1:5], "big"))
        b.dead(i, reason, text)

    def _ndjson(self, b: Batch, i: int, v: bytes) -> None:
        lines = ndjson_lines(v)
        if lines[0].startswith(_BOM):  # a byte order mark before the first record, as before a single object
            lines[0] = lines[0][len(_BOM) :]
        found = 0
        for n, line in enumerate(lines):
            if not line.strip(_BLANKS):  # JSON's blanks only: a line holding a form feed is no blank line
                continue
            found += 1
            what = f"Line {n} of the NDJSON message"
            try:
                d = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                b.dead(i, *json_error(line, exc, what), n)
                continue
            if type(d) is not dict:
                b.dead(i, *not_object(d, what), n)
            elif has_duplicate_keys(line, d):
                b.dead(i, DecodeReason.DUPLICATE_KEY, _DUPLICATE.format(what=what), n)
            else:
                self._add(b, d, i, n)
        if not found:
            b.dead(i, DecodeReason.EMPTY, "The NDJSON message has no record.")
            return
        b.out.formats[i] = Format.NDJSON
        b.out.lines[i] = lines

    # -- columns ---------------------------------------------------------------------------

    def _columns(self, b: Batch) -> Part:
        """Transpose the record tuples (in C) and build strict wire-dtype columns; wrong-typed values become null."""
        if not b.rows:
            schema = {f.name: WIRE.get(k, f.dtype) for f, k in zip(self.fields, self.kinds, strict=True)}
            return empty_frame(schema), empty_frame(MISMATCH_SCHEMA), b.message, b.line
        series: list[pl.Series] = []
        bad: dict[str, list[Any]] = {"row": [], "column": [], "value": []}
        for f, kind, values in zip(self.fields, self.kinds, zip(*b.rows, strict=True), strict=True):
            if kind is Kind.OTHER:
                item = kind_of(cast(pl.DataType, f.dtype.inner)) if isinstance(f.dtype, pl.List) else Kind.OTHER
                if item is not Kind.OTHER:  # an array of scalars: each element must fit (``"x"`` is no list)
                    wrong = [r for r, x in enumerate(values) if not fits_list(item, x)]
                    for r in wrong:
                        bad["row"].append(r)
                        bad["column"].append(f.name)
                        bad["value"].append(REDACTED if f.redacted else shown_value(values[r]))
                    if wrong:
                        b.out.type_mismatches[f.name] = b.out.type_mismatches.get(f.name, 0) + len(wrong)
                        gone = set(wrong)
                        values = tuple(None if r in gone else x for r, x in enumerate(values))
                series.append(lenient(f, values))
                continue
            s = None
            # pl.Series(strict=True) refuses every other JSON type, except bool for a number: test that one first;
            # objects and arrays are judged value by value at once (polars takes seconds to refuse deep ones)
            types = set(map(type, values))
            if not (dict in types or list in types or (bool in types and kind in (Kind.INT, Kind.FLOAT))):
                try:
                    s = pl.Series(f.name, values, dtype=WIRE[kind], strict=True)
                except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
                    s = None
            if s is None:  # the rare column holding a wrong-typed value: judge value by value
                kept: list[Any] = []
                for r, x in enumerate(values):
                    if x is None or fits(kind, x):
                        kept.append(wire_value(kind, x))
                        continue
                    kept.append(None)
                    bad["row"].append(r)
                    bad["column"].append(f.name)
                    bad["value"].append(REDACTED if f.redacted else shown_value(x))
                    b.out.type_mismatches[f.name] = b.out.type_mismatches.get(f.name, 0) + 1
                s = pl.Series(f.name, kept, dtype=WIRE[kind], strict=False)
            series.append(s)
        return pl.DataFrame(series), pl.DataFrame(bad, schema=MISMATCH_SCHEMA), b.message, b.line


class Decoder(MessageDecoder):
    """Decodes batches of messages for one schema object; build once, reuse for every batch.

    The one-object JSON messages that re-encode to their own bytes are read in bulk (:mod:`streams.formats.bulk`);
    every other message goes through :class:`MessageDecoder`, alone. The result is the same as
    :class:`MessageDecoder`'s, row for row. ``bulk=False`` (or a schema with nested or non-scalar fields) reads
    every message one by one.
    """

    def __init__(
        self, schema_obj: SchemaObject, *, max_message_bytes: int = 1_048_576, pause_gc: bool = True, bulk: bool = True
    ) -> None:
        super().__init__(schema_obj, max_message_bytes=max_message_bytes, pause_gc=pause_gc)
        flat = not self._nested and Kind.OTHER not in self.kinds
        self._bulk = BulkReader(self.names, self.kinds) if bulk and flat else None

    def warm(self) -> Decoded:
        """A record of nulls (every declared top-level field ``null``) decoded by a fresh per-message decoder, and
        parsed and proved by the bulk reader: the readers' one-off costs paid ahead, this decoder's state (the bulk
        reader's learnt key order and cooldown) untouched (:mod:`streams.pipeline.warming`)."""
        value = orjson.dumps(dict.fromkeys(self._top))
        if self._bulk is not None:
            self._bulk.warm(value)
        return MessageDecoder(self.schema_obj, max_message_bytes=self.max_message_bytes).decode([Value(value)])

    def _decode(self, messages: Sequence[Payload]) -> Decoded:
        if self._bulk is None:
            return super()._decode(messages)
        proven, proven_msgs = self._bulk.read(messages, self.max_message_bytes)
        n = len(messages)
        if len(proven_msgs) == n:  # every message one proven record (the common batch)
            provenance = np.arange(n, dtype=np.uint32)
            return Decoded(
                proven, pl.Series("message", provenance), pl.Series("line", provenance * 0), [Format.JSON] * n
            )
        b = Batch(n)
        if proven_msgs:
            formats = b.out.formats
            for i in proven_msgs:
                formats[i] = Format.JSON
            todo: Iterable[int] = _others(n, proven_msgs)
        else:
            todo = range(n)
        arrow = self._loop(messages, todo, b)
        if proven_msgs and not b.rows:  # every JSON record proven: no per-message columns to build
            part: Part = (proven, no_mismatches(), proven_msgs, [0] * len(proven_msgs))
        else:
            part = interleave(b.out, proven, proven_msgs, self._columns(b))
        return self._assemble(messages, b, [part], arrow)


def _others(n: int, taken: list[int]) -> list[int]:
    """``range(n)`` without the indices ``taken``."""
    keep = np.ones(n, dtype=bool)
    keep[taken] = False
    return cast(list[int], np.flatnonzero(keep).tolist())
