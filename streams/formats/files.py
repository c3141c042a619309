"""Local data files as frames: Parquet, NDJSON / JSON Lines, CSV / TSV (what ``qstreams`` validates).

Parquet and CSV keep the types found in the file (the engine conforms them); nested fields
(``customer.address.zip``) are read from Parquet struct columns by path, and from a CSV column
whose header is the dotted path; CSV's text properties are read as text (a zip code ``01234``
keeps its leading zero). NDJSON goes through the stream :class:`~streams.formats.decoder.Decoder`
line by line, so a JSON value of the wrong type (``"12"`` for an integer) is a mismatch exactly as
on a topic; each line is a bare :class:`~streams.formats.decoder.Value`, no Kafka type involved.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from streams.contracts.model import SchemaObject
from streams.errors import DataFormatError
from streams.formats.columns import flatten_structs
from streams.formats.decoder import Decoder, Value
from streams.formats.reasons import Decoded

__all__ = ["SUPPORTED", "file_kind", "read_ndjson", "read_table", "write_table"]

_PARQUET = (".parquet", ".pq")
_NDJSON = (".ndjson", ".jsonl", ".json")
_CSV = (".csv", ".tsv")
SUPPORTED = ", ".join((*_PARQUET, *_NDJSON, *_CSV))


def file_kind(path: Path) -> str:
    """``parquet``, ``ndjson`` or ``csv`` from the file extension; :class:`DataFormatError` otherwise."""
    suffix = path.suffix.lower()
    for kind, suffixes in (("parquet", _PARQUET), ("ndjson", _NDJSON), ("csv", _CSV)):
        if suffix in suffixes:
            return kind
    raise DataFormatError(f"cannot tell the format of {path} from its extension; supported are {SUPPORTED}")


def read_table(path: Path, schema: SchemaObject | None = None) -> pl.DataFrame:
    """A Parquet or CSV/TSV file as a frame with the types found in the file.

    CSV has no types: with ``schema``, its text properties (``logicalType: string``, enums) are
    read as text, so ``01234`` stays a string with its leading zero instead of being inferred as
    the number 1234; other columns are inferred, then conformed by the engine.
    """
    kind = file_kind(path)
    if not path.exists():
        raise DataFormatError(f"no such data file: {path}")
    try:
        if kind == "parquet":  # struct columns hold nested fields: read them by dotted path
            df = pl.read_parquet(path)
            return flatten_structs(df, [f.name for f in schema.fields]) if schema is not None else df
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        text = {f.name: pl.String() for f in schema.fields if _text(f.dtype)} if schema is not None else {}
        return pl.read_csv(
            path, separator=sep, infer_schema_length=None, try_parse_dates=True, schema_overrides=text or None
        )
    except Exception as exc:  # polars raises many kinds; all mean "this file is not readable as a table"
        raise DataFormatError(f"cannot read {path} as {kind}: {exc}") from None


def _text(dtype: pl.DataType) -> bool:
    return dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum))


def read_ndjson(path: Path, schema: SchemaObject) -> Decoded:
    """An NDJSON file decoded for ``schema`` (one record per non-blank line); non-object lines raise."""
    numbered = [(n, ln) for n, ln in enumerate(path.read_bytes().splitlines(), 1) if ln.strip(b" \t\r\n")]
    values = [Value(ln) for _, ln in numbered]
    decoded = Decoder(schema, max_message_bytes=1 << 30, pause_gc=False).decode(values)
    if decoded.dead:
        first = decoded.dead[0]  # its line in the file, blank lines counted
        raise DataFormatError(
            f"{path}:{numbered[first.message][0]}: line is not a JSON object ({first.reason}: {first.detail}); "
            f"{len(decoded.dead)} such line(s)"
        )
    return decoded


def write_table(df: pl.DataFrame, path: Path) -> None:
    """Write a DataFrame in the format its extension names."""
    kind = file_kind(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "parquet":
            df.write_parquet(path)
        elif kind == "ndjson":
            df.write_ndjson(path)
        else:
            flat = df.with_columns(
                pl.col(c).list.join(";")
                for c, t in df.schema.items()
                if isinstance(t, pl.List) and t.inner == pl.String
            )
            flat.write_csv(path, separator="\t" if path.suffix.lower() == ".tsv" else ",")
    except OSError as exc:
        raise DataFormatError(f"cannot write {path}: {exc.strerror}") from None
