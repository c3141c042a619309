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

__all__ = ["SUPPORTED", "read_and_validate", "restore_cells", "write_table"]


def read_and_validate(
    path: Path, contract: Contract, schema: SchemaObject, delimiter: str | None = None
) -> tuple[pl.DataFrame, ValidationReport, pl.DataFrame]:
    """Read a data file and validate it, never aborting on a value that does not fit the contract.

    Returns the frame judged (``--out-valid``'s rows, typed), the report, and the same rows with each value
    that is not of its property's type (null in the frame judged) put back as it was found
    (:func:`restore_cells`): ``--out-invalid``'s rows.

    Parquet and CSV keep the types found in the file and the engine conforms them (a CSV cell that is no
    value of its column's type fails ``dtype`` on its own row); NDJSON goes through the stream decoder, so
    a JSON value of the wrong type (``"12"`` for an integer) is a failing ``dtype`` row exactly as on a topic.
    ``delimiter``: a CSV file's field separator (see :func:`streams.formats.files.read_table`).
    """
    from streams.pipeline.verdicts import merge_mismatches
    from streams.validation.engine import compile_plan

    kind = file_kind(path)
    if delimiter is not None and kind != "csv":
        raise DataFormatError(f"--delimiter applies to CSV and TSV files, not to {path.name} ({kind})")
    if not path.exists():
        raise DataFormatError(f"no such data file: {path}")
    plan = compile_plan(contract, schema.name)
    if kind in ("parquet", "arrow"):
        df = read_table(path, schema)
        return df, plan.validate(df), df
    if kind == "csv":
        df, mismatches = read_csv(path, schema, delimiter)
        report = merge_mismatches(plan.validate(df), schema, _redacted(mismatches, schema))
        return df, report, restore_cells(df, mismatches)
    try:
        decoded = read_ndjson(path, schema)
    except DataFormatError:
        raise
    except Exception as exc:
        raise DataFormatError(f"cannot read {path} as {kind}: {exc}") from None
    report = merge_mismatches(plan.validate(decoded.frame), schema, decoded.mismatches)
    return decoded.frame, report, restore_cells(decoded.frame, decoded.mismatches, json_text=True)


def _redacted(mismatches: pl.DataFrame, schema: SchemaObject) -> pl.DataFrame:
    """The cells of classified properties shown as ``[REDACTED]`` in failure cases, as the decoder shows them."""
    from streams.validation.report import REDACTED

    hidden = [f.name for f in schema.fields if f.redacted]
    shown = pl.when(pl.col("column").is_in(hidden)).then(pl.lit(REDACTED)).otherwise(pl.col("value"))
    return mismatches.with_columns(shown.alias("value")) if hidden else mismatches


def restore_cells(df: pl.DataFrame, mismatches: pl.DataFrame, *, json_text: bool = False) -> pl.DataFrame:
    """``df`` with each mismatched value (null in ``df``) put back as the text it was found as.

    A column holding such a value becomes text (``1`` stays ``"1"`` beside ``"x"``). ``json_text``: the
    values are shown as JSON (the decoder's ``"x"``), and a JSON string is put back as its content.
    A column that cannot hold text (a list) keeps the null.
    """
    if mismatches.is_empty():
        return df
    out: list[pl.Series] = []
    found = df.schema  # built anew by each `df.schema`
    for (name,), cells in mismatches.group_by("column", maintain_order=True):
        dtype = found.get(str(name))
        if dtype is None or isinstance(dtype, (pl.List, pl.Array, pl.Struct)):
            continue
        values = cells.get_column("value").to_list()
        if json_text:
            values = [_json_string(v) for v in values]
        column = df.get_column(str(name)).cast(pl.String)
        out.append(column.scatter(cells.get_column("row").to_numpy(), pl.Series(values, dtype=pl.String)))
    return df.with_columns(out) if out else df


def _json_string(shown: str | None) -> str | None:
    import json

    if shown is not None and shown.startswith('"'):
        try:
            value = json.loads(shown)
        except ValueError:
            return shown
        return value if isinstance(value, str) else shown
    return shown
