"""Reading and writing the table files the CLI validates: Parquet, NDJSON / JSON Lines, CSV."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from streams.contracts.model import SchemaObject
from streams.errors import DataFormatError

_PARQUET = (".parquet", ".pq")
_NDJSON = (".ndjson", ".jsonl", ".json")
_CSV = (".csv", ".tsv")
SUPPORTED = ", ".join((*_PARQUET, *_NDJSON, *_CSV))


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    for kind, suffixes in (("parquet", _PARQUET), ("ndjson", _NDJSON), ("csv", _CSV)):
        if suffix in suffixes:
            return kind
    raise DataFormatError(f"cannot tell the format of {path} from its extension; supported are {SUPPORTED}")


def read_table(path: Path, schema: SchemaObject | None = None) -> pl.DataFrame:
    """Read a data file into a DataFrame without enforcing the contract (the engine does that).

    Columns keep the types found in the file, so a value that does not fit the
    contract is reported as a failing row instead of aborting the read.
    """
    kind = _kind(path)
    if not path.exists():
        raise DataFormatError(f"no such data file: {path}")
    try:
        if kind == "parquet":
            return pl.read_parquet(path)
        if kind == "ndjson":
            return _read_ndjson(path)
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        return pl.read_csv(path, separator=sep, infer_schema_length=None, try_parse_dates=True)
    except DataFormatError:
        raise
    except Exception as exc:  # polars raises many kinds; all mean "this file is not readable as a table"
        raise DataFormatError(f"cannot read {path} as {kind}: {exc}") from None


def _read_ndjson(path: Path) -> pl.DataFrame:
    try:
        return pl.read_ndjson(path, infer_schema_length=None)
    except Exception:
        # mixed types in one field: keep every record, values of a mixed field as text
        import orjson

        rows = []
        for n, line in enumerate(path.read_bytes().splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    raise DataFormatError(f"{path}:{n}: not a JSON object: {exc}") from None
        return pl.DataFrame(rows, infer_schema_length=None, strict=False)


def write_table(df: pl.DataFrame, path: Path) -> None:
    """Write a DataFrame in the format its extension names."""
    kind = _kind(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "parquet":
            df.write_parquet(path)
        elif kind == "ndjson":
            df.write_ndjson(path)
        else:
            flat = df.with_columns(
                pl.col(c).list.join(";") for c, t in df.schema.items() if isinstance(t, pl.List) and t.inner == pl.String
            )
            flat.write_csv(path, separator="\t" if path.suffix.lower() == ".tsv" else ",")
    except OSError as exc:
        raise DataFormatError(f"cannot write {path}: {exc.strerror}") from None
