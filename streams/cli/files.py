"""The CLI's data files: read with :mod:`streams.formats.files`, validate with the engine."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from streams.contracts.model import Contract, SchemaObject
from streams.errors import DataFormatError
from streams.formats.files import SUPPORTED, file_kind, read_csv, read_ndjson, read_table, write_table

if TYPE_CHECKING:
    from streams.validation.report import ValidationReport

__all__ = ["SUPPORTED", "read_and_validate", "write_table"]


def read_and_validate(path: Path, contract: Contract, schema: SchemaObject) -> tuple[pl.DataFrame, ValidationReport]:
    """Read a data file and validate it, never aborting on a value that does not fit the contract.

    Parquet and CSV keep the types found in the file and the engine conforms them (a CSV cell that is no
    value of its column's type fails ``dtype`` on its own row); NDJSON goes through the stream decoder, so a JSON value of the wrong type
    (``"12"`` for an integer) is a failing ``dtype`` row exactly as on a topic.
    """
    from streams.pipeline.verdicts import merge_mismatches
    from streams.validation.engine import compile_plan

    kind = file_kind(path)
    if not path.exists():
        raise DataFormatError(f"no such data file: {path}")
    plan = compile_plan(contract, schema.name)
    if kind == "parquet":
        df = read_table(path, schema)
        return df, plan.validate(df)
    if kind == "csv":
        df, mismatches = read_csv(path, schema)
        return df, merge_mismatches(plan.validate(df), schema, mismatches)
    try:
        decoded = read_ndjson(path, schema)
    except DataFormatError:
        raise
    except Exception as exc:
        raise DataFormatError(f"cannot read {path} as {kind}: {exc}") from None
    return decoded.frame, merge_mismatches(plan.validate(decoded.frame), schema, decoded.mismatches)
