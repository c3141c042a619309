"""Arrow IPC stream (or file) values to wire-dtype columns, wrong-typed values as mismatches.

Schema drift is counted per row, as for JSON records: a table of n rows lacking a declared column is n
rows lacking that field (``Decoded.missing_fields``, and one ``Decoded.irregular`` entry per row, so
windows count each record and its offset), a table with an undeclared column is n rows carrying it.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from streams.contracts.model import Field
from streams.formats.columns import WIRE, Batch, Kind, Part, arrow_value, flatten_structs, no_mismatches
from streams.formats.reasons import Decoded, DecodeReason, Format
from streams.validation.report import REDACTED

__all__ = ["ARROW_MAGIC", "decode_arrow", "ndjson_lines", "read_ipc"]

ARROW_MAGIC = (b"\xff\xff\xff\xff", b"ARROW1")


def read_ipc(v: bytes) -> pa.Table:
    """An Arrow IPC file (``ARROW1`` magic) or stream, read whole; raises what pyarrow raises."""
    buf = pa.py_buffer(v)
    return (pa.ipc.open_file(buf) if v.startswith(b"ARROW1") else pa.ipc.open_stream(buf)).read_all()


def ndjson_lines(v: bytes) -> list[bytes]:
    """The lines of an NDJSON message, a trailing ``\\r`` cut (CRLF); a record's position is its line's index."""
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in v.split(b"\n")]


def decode_arrow(
    b: Batch, i: int, v: bytes, fields: tuple[Field, ...], kinds: tuple[Kind, ...], declared: frozenset[str]
) -> Part | None:
    """Message ``i`` (value ``v``) of the batch as a part; None (and a dead letter) when unreadable or empty."""
    out = b.out
    try:
        table = read_ipc(v)
        df = pl.from_arrow(table)
        assert isinstance(df, pl.DataFrame)
    except Exception as exc:  # any failure to read is the message's, not the batch's
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        b.dead(i, DecodeReason.BAD_ARROW, f"The message value is not a readable Arrow IPC stream ({first}).")
        return None
    if df.height == 0:
        b.dead(i, DecodeReason.EMPTY, "The Arrow IPC stream has no record.")
        return None
    out.formats[i] = Format.ARROW
    n = df.height
    _irregular(out, offset_of_next(b), n, df.columns, declared)
    out.tables[i] = table
    df = flatten_structs(df, [f.name for f in fields])  # nested fields: struct columns read by path
    cols: list[pl.Expr] = []
    bad = [no_mismatches()]
    for f, kind in zip(fields, kinds, strict=True):
        wire = WIRE.get(kind, f.dtype)
        if f.name not in df.columns:  # n nulls: a frame of literals alone would have one row for the n records
            cols.append(pl.repeat(None, n, dtype=wire).alias(f.name))
            continue
        value = arrow_value(pl.col(f.name), df.schema[f.name], f.dtype, kind)
        if value is None:  # every non-null value is of the wrong type
            value = pl.repeat(None, n, dtype=wire)
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


def offset_of_next(b: Batch) -> int:
    """The row the next Arrow part starts at in the decoded frame: the JSON and NDJSON rows come first, then
    the Arrow parts in message order (:func:`streams.formats.columns.assemble`)."""
    return len(b.rows) + sum(t.num_rows for t in b.out.tables.values())


def _irregular(out: Decoded, start: int, n: int, columns: list[str], declared: frozenset[str]) -> None:
    """Schema drift as JSON records count it, per row: every row of a table lacking a declared (top-level)
    column lacks that field, every row of a table with an undeclared column carries it. The rows are
    ``start .. start + n - 1`` of the decoded frame (``Decoded.irregular``, rows ascending)."""
    unknown = tuple(sorted(c for c in columns if c not in declared))
    missing = tuple(sorted(declared.difference(columns)))
    for name in unknown:
        out.unknown_fields[name] = out.unknown_fields.get(name, 0) + n
    for name in missing:
        out.missing_fields[name] = out.missing_fields.get(name, 0) + n
    if unknown or missing:
        out.irregular.extend((row, unknown, missing) for row in range(start, start + n))
