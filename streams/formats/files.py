"""Local data files as frames: Parquet, Arrow IPC, NDJSON / JSON Lines, JSON, CSV / TSV (what ``qstreams`` validates).

Parquet and CSV keep the types found in the file (the engine conforms them); nested fields
(``customer.address.zip``) are read from Parquet struct columns by path, and from a CSV column
whose header is the dotted path; CSV's text properties are read as text (a zip code ``01234``
keeps its leading zero). A CSV column of another type that polars could not infer (one cell ``x`` in an
integer column makes it text) is parsed cell by cell (:func:`parse_cells`): a cell that is not a value of
the property's type is a mismatch of its own row, as a wrong-typed JSON value is, and the other rows are
judged (pandera's ``coerce=True`` reports such a cell by row too). NDJSON goes through the stream
:class:`~streams.formats.decoder.Decoder` line by line, so a JSON value of the wrong type (``"12"`` for an
integer) is a mismatch exactly as on a topic; each line is a bare :class:`~streams.formats.decoder.Value`,
no Kafka type involved.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import cast

import numpy as np
import polars as pl

from streams.contracts.model import SchemaObject
from streams.errors import DataFormatError
from streams.formats.columns import flatten_structs
from streams.formats.decoder import Decoder, Value
from streams.formats.reasons import MISMATCH_SCHEMA, Decoded
from streams.validation.conform import to_time

__all__ = ["SUPPORTED", "file_kind", "parse_cells", "read_csv", "read_ndjson", "read_table", "write_table"]

_PARQUET = (".parquet", ".pq")
_ARROW = (".arrow", ".feather", ".ipc")  # the Arrow IPC file format (Feather v2)
_NDJSON = (".ndjson", ".jsonl", ".json")
_CSV = (".csv", ".tsv")
SUPPORTED = ", ".join((*_PARQUET, *_ARROW, *_NDJSON, *_CSV))


def file_kind(path: Path) -> str:
    """``parquet``, ``arrow`` (IPC), ``ndjson`` or ``csv`` from the extension; :class:`DataFormatError` otherwise."""
    suffix = path.suffix.lower()
    for kind, suffixes in (("parquet", _PARQUET), ("arrow", _ARROW), ("ndjson", _NDJSON), ("csv", _CSV)):
        if suffix in suffixes:
            return kind
    raise DataFormatError(f"cannot tell the format of {path} from its extension; supported are {SUPPORTED}")


def read_table(path: Path, schema: SchemaObject | None = None, delimiter: str | None = None) -> pl.DataFrame:
    """A Parquet, Arrow IPC or CSV/TSV file as a frame with the types found in the file.

    CSV has no types: with ``schema``, its text properties (``logicalType: string``, enums) are
    read as text, so ``01234`` stays a string with its leading zero instead of being inferred as
    the number 1234; other columns are inferred, then conformed by the engine. ``delimiter``: the
    CSV's field separator (default ``,``, a tab for ``.tsv``); without it, a header that names fewer
    of the schema's properties than it would split on ``;``, a tab or ``|`` is refused naming that
    delimiter (:func:`_refuse_other_delimiter`), never read with a guessed one.
    """
    kind = file_kind(path)
    if not path.exists():
        raise DataFormatError(f"no such data file: {path}")
    if delimiter is not None and len(delimiter) != 1:
        raise DataFormatError(f"the CSV delimiter must be one character, not {delimiter!r}")
    try:
        if kind in ("parquet", "arrow"):  # struct columns hold nested fields: read them by dotted path
            df = _undictionary(pl.read_parquet(path) if kind == "parquet" else pl.read_ipc(path))
            return flatten_structs(df, [f.name for f in schema.fields]) if schema is not None else df
        _refuse_utf16(path)
        sep = delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
        text = {f.name: pl.String() for f in schema.fields if _text(f.dtype)} if schema is not None else {}
        df = pl.read_csv(path, separator=sep, infer_schema_length=None, schema_overrides=text or None)
    except DataFormatError:
        raise
    except Exception as exc:  # polars raises many kinds; all mean "this file is not readable as a table"
        raise DataFormatError(f"cannot read {path} as {kind}: {_reason(exc, path)}") from None
    if any("_duplicated_" in c for c in df.columns):  # polars renames a repeated header 'id' to 'id_duplicated_0'
        _refuse_repeated_headers(path, sep)
    if schema is not None and delimiter is None and not {f.name for f in schema.fields} <= set(df.columns):
        _refuse_other_delimiter(path, sep, [f.name for f in schema.fields])
    return df


#: polars' words for a CSV it cannot read, and what they mean to whoever wrote the file
_CSV_CAUSES = (
    ("not properly escaped", "a quoted field is not closed (an odd number of '\"' in a row)"),
    ("more fields than defined", "a row has more fields than the header (a ragged row, or the delimiter inside an "
     "unquoted field: quote it, or give --delimiter)"),
    ("invalid utf-8", "the file is not UTF-8 text (re-encode it as UTF-8)"),
)  # fmt: skip


def _refuse_utf16(path: Path) -> None:
    """polars reads a UTF-16 file's header as mojibake (and then reports every property missing)."""
    with contextlib.suppress(OSError), path.open("rb") as f:
        if f.read(2) in (b"\xff\xfe", b"\xfe\xff"):
            raise DataFormatError(
                f"cannot read {path} as csv: the file is UTF-16 text (it starts with a UTF-16 byte order mark); "
                "re-encode it as UTF-8"
            )


def _reason(exc: Exception, path: Path) -> str:
    """Why a file cannot be read, without the advice polars gives its Python callers (``infer_schema_length``,
    ``truncate_ragged_lines=True``), which a command-line user cannot act on."""
    text = str(exc)
    if path.suffix.lower() in (".csv", ".tsv"):
        lowered = text.lower()
        for words, cause in _CSV_CAUSES:
            if words in lowered:
                return cause
    return text.split("\n\n", 1)[0].strip()


#: field separators a CSV file may use instead of the one its extension implies
_DELIMITERS = {",": "a comma", ";": "a semicolon", "\t": "a tab", "|": "a vertical bar"}


def _refuse_other_delimiter(path: Path, sep: str, names: list[str]) -> None:
    """:class:`DataFormatError` when the header, split on another delimiter, names more of ``names`` than on
    ``sep`` (a ``;``-separated ``.csv`` read on ``,`` is one column: every row failed every property)."""
    import csv

    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        line = fh.readline()
    wanted = set(names)

    def named(delimiter: str) -> list[str]:
        header = next(csv.reader([line], delimiter=delimiter), [])
        return [n for n in header if n in wanted]

    found = len(named(sep))
    best, hits = max(((d, named(d)) for d in _DELIMITERS if d != sep), key=lambda dh: len(dh[1]))
    if len(hits) > found:
        shell = "tab" if best == "\t" else repr(best)
        shown = ", ".join(hits[:3]) + (", ..." if len(hits) > 3 else "")
        raise DataFormatError(
            f"{path}:1: the header split on {_DELIMITERS.get(sep, repr(sep))} ({sep!r}) names {found} of the "
            f"{len(wanted)} properties, but split on {_DELIMITERS[best]} ({best!r}) it names {len(hits)} "
            f"({shown}): the file is likely {best!r}-delimited; pass --delimiter {shell} (or save it with "
            f"{_DELIMITERS.get(sep, repr(sep))} between fields)"
        )


def _undictionary(df: pl.DataFrame) -> pl.DataFrame:
    """Arrays of dictionary-encoded strings (Parquet writers' default for repeated text) as arrays of text.

    polars reads them as ``List(Categorical)``, which the engine does not conform to ``List(String)``:
    every row failed ``dtype``. (A dictionary-encoded string column is conformed by the engine.)
    """
    lists = [
        pl.col(c).cast(pl.List(pl.String))
        for c, t in df.schema.items()
        if isinstance(t, pl.List) and isinstance(t.inner, (pl.Categorical, pl.Enum))
    ]
    return df.with_columns(lists) if lists else df


def _refuse_repeated_headers(path: Path, sep: str) -> None:
    """:class:`DataFormatError` naming a header that a CSV file repeats (which column holds it is ambiguous)."""
    import csv
    from collections import Counter

    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        header = next(csv.reader(fh, delimiter=sep), [])
    repeated = [name for name, n in Counter(header).items() if n > 1]
    if repeated:
        raise DataFormatError(
            f"{path}:1: the header names column {repeated[0]!r} {header.count(repeated[0])} times; "
            "which of them holds the property is ambiguous (rename or drop the others)"
        )


def read_csv(path: Path, schema: SchemaObject, delimiter: str | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A CSV/TSV file for ``schema``: the frame, and its cells that are no value of their property's type.

    Columns are read as :func:`read_table` reads them; a declared column that came out as text though its
    property is not (an integer column with one cell ``x``) is then parsed cell by cell with
    :func:`parse_cells`. The cells that do not parse are null in the frame and listed as mismatches
    (``row``, ``column``, ``value``: the cell's text), as the decoder lists an NDJSON file's.
    """
    df = read_table(path, schema, delimiter)
    return parse_cells(df, schema)


def parse_cells(df: pl.DataFrame, schema: SchemaObject) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``df`` with its text columns of non-text properties parsed per cell, and the cells that did not parse.

    Integers (an integral number such as ``1.0`` or ``1e3`` is one, as in JSON), numbers, booleans
    (``true`` / ``false``, any case) and times (``HH:MM[:SS[.f]]``) are parsed here; dates and timestamps
    are parsed per cell by the engine. An empty cell is a null whatever its quoting (``""`` is how a CSV
    writer quoting every field spells a missing number).
    """
    values: list[pl.Series] = []
    bad: list[pl.DataFrame] = []
    found = df.schema  # built anew by each `df.schema` (4 ms over 2,000 columns)
    for f in schema.fields:
        if found.get(f.name) != pl.String:
            continue
        cell = pl.col(f.name).replace("", None)  # the empty cell that polars reads as "" when quoted
        value = _parse(cell, f.dtype)
        if value is None:
            continue
        # a select per column: one select of every column's expressions grows superlinearly with their
        # number in polars' planner (500 columns: 12 s against 1.7 s)
        got = df.select(value.alias("v"), (cell.is_not_null() & value.is_null()).alias("m"))
        values.append(got.get_column("v").alias(f.name))
        miss = got.get_column("m").fill_null(False)
        if miss.any():
            rows = np.flatnonzero(miss.to_numpy()).astype(np.uint32)
            bad.append(pl.DataFrame({"row": rows, "column": f.name, "value": df.get_column(f.name).filter(miss)}))
    mismatches = pl.concat(bad).cast(MISMATCH_SCHEMA).sort("row") if bad else pl.DataFrame(schema=MISMATCH_SCHEMA)
    return (df.with_columns(values) if values else df), mismatches


def _parse(cell: pl.Expr, dtype: pl.DataType) -> pl.Expr | None:
    """``cell`` (text) as ``dtype``, null where it is no such value; None for types left to the engine."""
    if dtype.is_integer():
        number = cell.cast(pl.Float64, strict=False)
        integral = number.is_finite() & (number.floor() == number)
        whole = pl.when(integral).then(number.cast(dtype, strict=False))
        return pl.coalesce(cell.cast(dtype, strict=False), whole)
    if dtype.is_float():
        return cell.cast(pl.Float64, strict=False)  # the engine narrows Float32 and flags an overflow
    if dtype == pl.Boolean:
        lower = cell.str.to_lowercase()
        return pl.when(lower == "true").then(True).when(lower == "false").then(False).otherwise(None)
    if isinstance(dtype, pl.List):  # elements joined with ';' (write_table); one bad element fails the cell
        item = _parse(pl.element(), cast(pl.DataType, dtype.inner)) if dtype.inner != pl.String else pl.element()
        if item is None:
            return None
        items = cell.str.split(";").list.eval(item)
        return pl.when(items.list.eval(pl.element().is_null()).list.any()).then(None).otherwise(items)
    if dtype == pl.Time:
        return to_time(cell)
    return None


def _text(dtype: pl.DataType) -> bool:
    """Read as text from CSV: text properties, and arrays (``a;b``, as :func:`write_table` writes them)."""
    return dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum, pl.List))


def read_ndjson(path: Path, schema: SchemaObject) -> Decoded:
    """An NDJSON file decoded for ``schema`` (one record per non-blank line); non-object lines raise.

    A ``.json`` file holding one JSON array (``[{...}, {...}]``, pretty-printed or not) is read as its
    elements, each decoded from its own text as a line would be (see :func:`_array_elements`).
    """
    data = path.read_bytes()
    what = "line"
    if path.suffix.lower() == ".json" and data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
        numbered, what = _array_elements(path, data), "element"
    else:
        numbered = [(n, ln) for n, ln in enumerate(data.splitlines(), 1) if ln.strip(b" \t\r\n")]
    values = [Value(ln) for _, ln in numbered]
    decoded = Decoder(schema, max_message_bytes=1 << 30, pause_gc=False).decode(values)
    if decoded.dead:
        first = decoded.dead[0]  # its line in the file, blank lines counted
        raise DataFormatError(
            f"{path}:{numbered[first.message][0]}: {what} is not a JSON object ({first.reason}: {first.detail}); "
            f"{len(decoded.dead)} such {what}(s)"
        )
    return decoded


def _array_elements(path: Path, data: bytes) -> list[tuple[int, bytes]]:
    """The elements of a JSON array file as (line where the element starts, its text as written).

    Each element's text is kept byte for byte (``1.0``, ``9223372036854775808`` reach the decoder as
    written); a file that is not one JSON array raises :class:`DataFormatError` naming the line.
    """
    import json
    import re

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    raw_decode, blank = json.JSONDecoder().raw_decode, re.compile(r"[ \t\r\n]*")
    out: list[tuple[int, bytes]] = []
    line, seen = 1, 0  # the line of position `seen`

    def at(pos: int) -> int:
        nonlocal line, seen
        line, seen = line + text.count("\n", seen, pos), pos
        return line

    def skip(pos: int) -> int:  # past white space
        m = blank.match(text, pos)
        return m.end() if m else pos

    def fail(pos: int, why: str) -> DataFormatError:
        return DataFormatError(f"{path}:{at(pos)}: not a JSON array of records: {why}")

    pos = skip(skip(0) + 1)  # after the '['
    if text.startswith("]", pos):
        pos += 1
    else:
        while True:
            try:
                _, end = raw_decode(text, pos)
            except ValueError as exc:
                raise fail(pos, str(exc)) from None
            out.append((at(pos), text[pos:end].encode()))
            pos = skip(end)
            if text.startswith(",", pos):
                pos = skip(pos + 1)
                continue
            if text.startswith("]", pos):
                pos += 1
                break
            raise fail(pos, "expected ',' or ']' after an element")
    if text[pos:].strip(" \t\r\n"):
        raise fail(pos, "text after the closing ']'")
    return out


def write_table(df: pl.DataFrame, path: Path) -> None:
    """Write a DataFrame in the format its extension names."""
    kind = file_kind(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "parquet":
            df.write_parquet(path)
        elif kind == "arrow":
            df.write_ipc(path)
        elif kind == "ndjson":
            df.write_ndjson(path)
        else:
            flat = df.with_columns(  # CSV has no nesting: arrays as 'a;b', structs as JSON text
                pl.col(c).list.eval(pl.element().cast(pl.String)).list.join(";")
                if isinstance(t, pl.List)
                else pl.col(c).struct.json_encode()
                for c, t in df.schema.items()
                if isinstance(t, (pl.List, pl.Struct))
            )
            flat.write_csv(path, separator="\t" if path.suffix.lower() == ".tsv" else ",")
    except OSError as exc:
        raise DataFormatError(f"cannot write {path}: {exc.strerror}") from None
    except pl.exceptions.PolarsError as exc:  # a column the format cannot hold
        raise DataFormatError(f"cannot write {path} as {kind}: {exc}") from None
