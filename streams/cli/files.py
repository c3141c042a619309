"""Reading and writing the table files the CLI validates: Parquet, NDJSON / JSON Lines, CSV."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from streams.contracts.model import Contract, SchemaObject
from streams.errors import DataFormatError

if TYPE_CHECKING:
    from streams.validation.engine import CompiledPlan
    from streams.validation.report import ValidationReport

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


def read_and_validate(path: Path, contract: Contract, schema: SchemaObject) -> tuple[pl.DataFrame, ValidationReport]:
    """Read a data file and validate it, never aborting on a value that does not fit the contract.

    Parquet and CSV keep the types found in the file and the engine conforms them;
    NDJSON goes through the stream decoder, so a JSON value of the wrong type
    (``"12"`` for an integer) is a failing ``dtype`` row exactly as on a topic.
    """
    from streams.validation.engine import compile_plan

    kind = _kind(path)
    if not path.exists():
        raise DataFormatError(f"no such data file: {path}")
    plan = compile_plan(contract, schema.name)
    try:
        if kind == "ndjson":
            return _ndjson(path, plan, schema)
        if kind == "parquet":
            df = pl.read_parquet(path)
        else:
            sep = "\t" if path.suffix.lower() == ".tsv" else ","
            df = pl.read_csv(path, separator=sep, infer_schema_length=None, try_parse_dates=True)
    except DataFormatError:
        raise
    except Exception as exc:  # polars raises many kinds; all mean "this file is not readable as a table"
        raise DataFormatError(f"cannot read {path} as {kind}: {exc}") from None
    return df, plan.validate(df)


def _ndjson(path: Path, plan: CompiledPlan, schema: SchemaObject) -> tuple[pl.DataFrame, ValidationReport]:
    from streams.kafka.decode import Decoder
    from streams.kafka.pipeline import merge_mismatches
    from streams.kafka.records import Message

    lines = [ln for ln in path.read_bytes().splitlines() if ln.strip()]
    messages = [Message(str(path), 0, i, ln) for i, ln in enumerate(lines)]
    decoded = Decoder(schema, max_message_bytes=1 << 30, pause_gc=False).decode(messages)
    if decoded.dead:
        first = decoded.dead[0]
        raise DataFormatError(
            f"{path}:{first.message + 1}: line is not a JSON object ({first.reason}: {first.detail}); "
            f"{len(decoded.dead)} such line(s)"
        )
    report = merge_mismatches(plan.validate(decoded.frame), schema, decoded.mismatches)
    return decoded.frame, report


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
                pl.col(c).list.join(";")
                for c, t in df.schema.items()
                if isinstance(t, pl.List) and t.inner == pl.String
            )
            flat.write_csv(path, separator="\t" if path.suffix.lower() == ".tsv" else ",")
    except OSError as exc:
        raise DataFormatError(f"cannot write {path}: {exc.strerror}") from None
