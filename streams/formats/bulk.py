"""Columnar bulk decode of one-object JSON messages, exact by proof: a row is kept only if it re-encodes to its bytes.

``pl.read_ndjson`` reads a whole batch in Rust, into the wire dtypes, without a Python object per value; but it is
lenient (``12`` in a String field becomes ``"12"``), cannot tell a missing field from a null, ignores unknown fields,
keeps one value of a repeated key and fails whole on one line of bad JSON. So its rows are not trusted: the frame is
written back with ``write_ndjson`` (in the messages' own key order) and a row is **proven** when its line equals the
message's value byte for byte. Equal bytes mean the message *is* the canonical JSON of that row: an object with exactly
the declared keys, each once, every value of its column's JSON type (a float never in an integer field, a string never
stands for a number), nothing nested, valid UTF-8, shortest round-trip floats. The per-message decoder
(:class:`~streams.formats.decoder.MessageDecoder`) would read exactly that row from it, with no dead letter, drift or
mismatch: the differential test ``tests/unit/formats/test_bulk_differential.py`` holds the two decoders equal.

Every message that is not proven (whitespace, escaped characters, integral floats in integer fields, wrong types,
missing or extra fields, NDJSON, Arrow, anything undecodable) goes through the per-message decoder, alone. A read that
fails (a line that is not JSON) is bisected down to :data:`LEAF` messages, which go the per-message way.

It pays off when producers write compact JSON in one key order (orjson, ``json.dumps(separators=(",", ":"))``,
Jackson, serde_json): then valid records are read in bulk and the duplicate-key pre-check is unnecessary (a proven
line has each key once). When most rows of a batch are not proven, bulk reads are paused for :data:`COOLDOWN` batches.
Only one-line ``{...}`` values are read (their shape is checked over the joined batch); after a batch that had that
shape, the next is read first and only its values that are not proven are checked (a proven value has that shape).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from itertools import compress
from operator import attrgetter, eq, itemgetter, not_
from typing import Any, Protocol, cast

import numpy as np
import orjson
import polars as pl

from streams.formats.columns import WIRE, Kind, Part, no_mismatches
from streams.formats.content_types import ARROW_STREAM, NDJSON, Headers, content_type
from streams.formats.reasons import Decoded, empty_frame

__all__ = ["COOLDOWN", "LEAF", "MIN_BATCH", "BulkReader", "interleave"]

MIN_BATCH = 256  # fewer candidates: the per-message decoder costs less than one bulk read and its proof
LEAF = 64  # a failing read of at most this many messages is not split further
COOLDOWN = 16  # batches read per message after a batch whose rows were mostly not proven
_VALUE, _HEADERS = attrgetter("value"), attrgetter("headers")
_FIRST, _LAST = itemgetter(0), itemgetter(-1)


class _Payload(Protocol):
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Headers: ...


class BulkReader:
    """Reads the provable one-object JSON messages of a batch for flat schemas of scalar fields."""

    def __init__(self, names: Sequence[str], kinds: Sequence[Kind]) -> None:
        if any(k is Kind.OTHER for k in kinds) or any("." in n for n in names):
            raise ValueError("Bulk decoding reads flat records of scalar fields only.")
        self.names = tuple(names)
        self._wire = {n: WIRE[k] for n, k in zip(names, kinds, strict=True)}
        self._declared = frozenset(names)
        self.order: tuple[str, ...] = self.names  # the producers' key order, learnt from a regular record
        self.cooldown = 0
        #: the last batch was one ``{...}`` line per message (``read`` then reads before checking the shape)
        self.shaped = True
        self.min_batch, self.leaf, self.pause = MIN_BATCH, LEAF, COOLDOWN  # tests lower them

    def read(self, messages: Sequence[_Payload], limit: int) -> tuple[pl.DataFrame, list[int]]:
        """The proven rows (declared column order, wire dtypes) and their message indices, ascending."""
        if self.cooldown:
            self.cooldown -= 1
            return self._empty(), []
        every = list(map(_VALUE, messages))
        n = len(every)
        if n < max(self.min_batch, 1):
            return self._empty(), []
        frames: list[pl.DataFrame] = []
        proven: list[int] = []
        common = None not in every and not any(map(_HEADERS, messages))
        if common and self.shaped and max(map(len, every), default=0) <= limit:
            # the last batch was one compact object per message: read first, and check the shape of the values that
            # are not proven only (a proven value is a written row: one line, {...}; see _whole)
            values = cast(list[bytes], every)
            joined = b"\n".join(values)
            learnt = self.order
            self._learn_order(values[0])
            parsed = self._parse(joined, n)
            frame, written = (None, b"") if isinstance(parsed, Exception) else parsed
            if frame is not None:
                if _whole(written, joined):
                    return self._frame([frame]), list(range(n))
                ok = list(map(eq, written.split(b"\n"), values))  # the last written line is empty: one more
                if all(map(_one_line_object, compress(values, map(not_, ok)))):  # the batch has the shape
                    if any(ok):
                        frames.append(frame.filter(pl.Series(ok, dtype=pl.Boolean)))
                        proven.extend(compress(range(n), ok))
                    return self._proven(frames, proven, n)
            self.shaped = _one_line_objects(values, joined, n)
            if self.shaped:  # the read stands: the rows proven one by one, as below
                idx = list(range(n))
                self._read(values, idx, 0, n, frames, proven, joined, parsed)
                return self._proven(frames, proven, n)
            self.order = learnt  # not read in bulk: the order is learnt from the batch's first candidate, if any
        idx, values, joined = self._candidates(messages, limit, every, common)
        if len(idx) < max(self.min_batch, 1):
            return self._empty(), []
        self._learn_order(values[0])
        self._read(values, idx, 0, len(values), frames, proven, joined)
        return self._proven(frames, proven, len(idx))

    def _proven(self, frames: list[pl.DataFrame], proven: list[int], candidates: int) -> tuple[pl.DataFrame, list[int]]:
        if 2 * len(proven) < candidates:
            self.cooldown = self.pause
        if not frames:
            return self._empty(), []
        return self._frame(frames), proven

    def _frame(self, frames: list[pl.DataFrame]) -> pl.DataFrame:
        frame = frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")
        if frame.n_chunks() > 1:  # one chunk per column, as the per-message decoder builds them (cheaper gathers)
            frame = frame.rechunk()
        return frame if self.order == self.names else frame.select(self.names)

    def warm(self, value: bytes) -> None:
        """Read and prove ``value`` (one record) twice, keeping nothing: the reader's one-off costs paid ahead."""
        self._read([value, value], [0, 1], 0, 2, [], [])

    def _empty(self) -> pl.DataFrame:
        return empty_frame(self._wire)

    def _candidates(
        self, messages: Sequence[_Payload], limit: int, every: list[bytes | None], common: bool
    ) -> tuple[list[int], list[bytes], bytes]:
        """One-line messages ``{...}`` within the size limit, not announced as NDJSON or Arrow; and their values
        joined by line breaks. ``every``: the messages' values; ``common``: none is None and no message has headers.
        ``shaped`` records whether every message was one (the next batch is then read before its shape is checked)."""
        if common:  # the common batch: tested in C, all at once
            values = cast(list[bytes], every)
            n, joined = len(values), b"\n".join(values)  # one copy of the batch: line breaks counted in it
            self.shaped = _one_line_objects(values, joined, n) and max(map(len, values), default=0) <= limit
            if self.shaped:
                return list(range(n)), values, joined
        self.shaped = False
        idx = [i for i, v in enumerate(every) if v and v[0] == 0x7B and v[-1] == 0x7D and len(v) <= limit]
        idx = [
            i
            for i in idx
            if b"\n" not in every[i]  # type: ignore[operator]
            and b"\r" not in every[i]  # type: ignore[operator]
            and not (messages[i].headers and content_type(messages[i].headers) in (ARROW_STREAM, NDJSON))
        ]
        values = cast(list[bytes], [every[i] for i in idx])
        return idx, values, b"\n".join(values)

    def _learn_order(self, value: bytes) -> None:
        try:
            d: Any = orjson.loads(value)
        except orjson.JSONDecodeError:
            return
        if type(d) is dict and len(d) == len(self.names) and d.keys() == self._declared:
            self.order = tuple(d)

    def _parse(self, joined: bytes, rows: int) -> tuple[pl.DataFrame | None, bytes] | Exception:
        """``joined`` read, and written back when it gave ``rows`` rows (else None and no bytes); the exception when
        the read fails (a line that is not JSON: polars says which character, not which line)."""
        try:
            frame = pl.read_ndjson(joined, schema={n: self._wire[n] for n in self.order}, ignore_errors=True)
        except Exception as exc:
            return exc
        if frame.height != rows:  # rows not one per line: prove nothing here
            return None, b""
        sink = io.BytesIO()
        frame.write_ndjson(sink)
        return frame, sink.getvalue()

    def _read(
        self,
        values: list[bytes],
        idx: list[int],
        lo: int,
        hi: int,
        frames: list[pl.DataFrame],
        proven: list[int],
        joined: bytes | None = None,
        parsed: tuple[pl.DataFrame | None, bytes] | Exception | None = None,
    ) -> None:
        """Prove the rows of ``values[lo:hi]`` (``parsed``: their ``joined`` bytes read already)."""
        joined = b"\n".join(values[lo:hi]) if joined is None else joined
        if parsed is None:
            parsed = self._parse(joined, hi - lo)
        if isinstance(parsed, Exception):  # split
            if hi - lo > self.leaf:
                mid = (lo + hi) // 2
                self._read(values, idx, lo, mid, frames, proven)
                self._read(values, idx, mid, hi, frames, proven)
            return
        frame, written = parsed
        if frame is None:
            return
        if _whole(written, joined):  # every row proven at once
            frames.append(frame)
            proven.extend(idx[lo:hi])
            return
        ok = list(map(eq, written.split(b"\n"), values[lo:hi]))  # the last written line is empty: one more
        if any(ok):
            frames.append(frame.filter(pl.Series(ok, dtype=pl.Boolean)))
            proven.extend(compress(idx[lo:hi], ok))


def _whole(written: bytes, joined: bytes) -> bool:
    """The rows written back are the joined values, every one: each value is then one line (a written row holds no
    raw line break or carriage return) and one JSON object, ``{...}``: the shape :func:`_one_line_objects` checks."""
    return len(written) == len(joined) + 1 and written.startswith(joined)


def _one_line_object(value: bytes) -> bool:
    """``value`` is one line, not empty, ``{...}``: :func:`_one_line_objects` for one value."""
    return bool(value) and value[0] == 0x7B and value[-1] == 0x7D and b"\n" not in value and b"\r" not in value


def _one_line_objects(values: list[bytes], joined: bytes, n: int) -> bool:
    """Every value (of ``n``, joined by line breaks in ``joined``) is one line, not empty, ``{...}``."""
    return (
        joined.count(b"\n") == n - 1
        and b"\r" not in joined
        and b"" not in values
        and bytes(map(_FIRST, values)).count(b"{") == n
        and bytes(map(_LAST, values)).count(b"}") == n
    )


def interleave(out: Decoded, proven: pl.DataFrame, proven_msgs: list[int], part: Part) -> Part:
    """The proven rows and the per-message decoder's ``part`` as one part in message order; the per-message rows'
    numbers in ``out.irregular`` and in the part's mismatches are renumbered to their places in it."""
    frame, mismatches, msgs, lines = part
    if not proven_msgs:
        return part
    if not msgs:
        return proven, no_mismatches(), proven_msgs, [0] * len(proven_msgs)
    p = len(proven_msgs)
    order = np.argsort(np.asarray(proven_msgs + msgs, dtype=np.int64), kind="stable")
    place = np.empty_like(order)
    place[order] = np.arange(len(order))
    moved = place[p:]  # row r of the per-message part is now row moved[r]
    out.irregular = [(int(moved[r]), unknown, missing) for r, unknown, missing in out.irregular]
    if mismatches.height:
        rows = moved[mismatches["row"].to_numpy()]
        mismatches = mismatches.with_columns(pl.Series("row", rows, dtype=pl.UInt32))
    merged = pl.concat([proven, frame], how="vertical")[order]
    all_msgs = np.asarray(proven_msgs + msgs, dtype=np.int64)[order].tolist()
    all_lines = np.asarray([0] * p + lines, dtype=np.int64)[order].tolist()
    return merged, mismatches, all_msgs, all_lines
