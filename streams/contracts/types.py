"""ODCS logical and physical types to polars dtypes, and typed bounds for logicalTypeOptions."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import polars as pl

from streams.contracts.source import Path_, SourceContext
from streams.errors import ContractSchemaError

__all__ = ["bound_value", "check_regex", "dtype_for", "regex_problem"]


_INT_TYPES: dict[str, pl.DataType] = {
    "int8": pl.Int8(),
    "tinyint": pl.Int8(),
    "int16": pl.Int16(),
    "smallint": pl.Int16(),
    "int32": pl.Int32(),
    "int": pl.Int32(),
    "integer": pl.Int32(),
    "int64": pl.Int64(),
    "bigint": pl.Int64(),
    "long": pl.Int64(),
    "uint8": pl.UInt8(),
    "uint16": pl.UInt16(),
    "uint32": pl.UInt32(),
    "uint64": pl.UInt64(),
}
_FLOAT_TYPES: dict[str, pl.DataType] = {
    "float32": pl.Float32(),
    "float": pl.Float32(),
    "real": pl.Float32(),
    "float64": pl.Float64(),
    "double": pl.Float64(),
}


def dtype_for(prop: dict[str, Any], where: Path_, ctx: SourceContext) -> pl.DataType:
    logical = prop.get("logicalType")
    physical = str(prop.get("physicalType") or "").strip().lower()
    base = re.split(r"[\s(\[]", physical, maxsplit=1)[0] if physical else ""
    if logical == "integer":
        return _INT_TYPES.get(base, pl.Int64()) if base != "integer" else pl.Int64()
    if logical == "number":
        if base.startswith("decimal") or base.startswith("numeric"):
            return pl.Float64()
        return _FLOAT_TYPES.get(base, pl.Float64())
    if logical == "string":
        return pl.String()
    if logical == "boolean":
        return pl.Boolean()
    if logical == "date":
        return pl.Date()
    if logical == "time":
        return pl.Time()
    if logical == "timestamp":
        opts = prop.get("logicalTypeOptions") or {}
        unit_match = re.search(r"\b(ms|us|ns)\b|\((3|6|9)\)", physical)
        unit = "us"
        if unit_match:
            unit = unit_match.group(1) or {"3": "ms", "6": "us", "9": "ns"}[unit_match.group(2)]
        tz: str | None = None
        if opts.get("timezone") is True or "tz" in base or "with time zone" in physical or "utc" in physical:
            tz = str(opts.get("defaultTimezone") or "UTC")
        return pl.Datetime(unit, tz)  # type: ignore[arg-type]
    if logical == "array":
        items = prop.get("items") or {}
        if items.get("logicalType") in ("string", "integer", "number", "boolean", "date", "timestamp"):
            return pl.List(dtype_for(items, (*where, "items"), ctx))
    kinds = "string, integer, number, boolean, date, time, timestamp, array of those"
    raise ctx.error(
        f"logicalType {logical!r} is not supported for stream validation; supported are {kinds}",
        (*where, "logicalType"),
    )


def bound_value(value: Any, dtype: pl.DataType, where: Path_, ctx: SourceContext) -> Any:
    try:
        if isinstance(dtype, pl.Datetime):
            v = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
            if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
                v = dt.datetime.combine(v, dt.time())
            if dtype.time_zone is not None:
                v = v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)
            elif v.tzinfo is not None:
                v = v.astimezone(dt.UTC).replace(tzinfo=None)
            return v
        if isinstance(dtype, pl.Date):
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        if dtype.is_numeric():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError
            return value
    except ValueError:
        pass
    else:
        if not (dtype.is_numeric() or isinstance(dtype, (pl.Date, pl.Datetime))):
            raise ctx.error(f"{where[-1]} applies to numbers, dates and timestamps, not {dtype}", where)
        return value
    raise ctx.error(f"{where[-1]} {value!r} is not a valid bound for a {dtype} property", where, ContractSchemaError)


#: Patterns longer than this are refused before they reach the regex compiler.
MAX_PATTERN_CHARS = 10_000


def regex_problem(pattern: str) -> str | None:
    """Why the engine's regex (polars, Rust ``regex`` crate) cannot run ``pattern``; None when it can.

    The Rust engine has no look-around and no backreferences, bounds nesting (250 groups) and
    the compiled size (10 MiB); it does support Unicode classes such as ``\\p{L}``.
    """
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"the pattern is {len(pattern):,} characters long; patterns are limited to {MAX_PATTERN_CHARS:,}"
    try:
        pl.Series("p", [], dtype=pl.String).str.contains(pattern)
    except Exception as exc:  # polars ComputeError carrying the regex crate's message
        return _regex_reason(str(exc))
    return None


def _regex_reason(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines()]
    for ln in lines:
        if ln.startswith("error:"):
            return ln.removeprefix("error:").strip()
    first = lines[0] if lines else text
    return first.removeprefix("regex error:").strip() or "the regex engine refused it"


def check_regex(pattern: str, where: Path_, ctx: SourceContext) -> None:
    problem = regex_problem(pattern)
    if problem is not None:
        shown = pattern if len(pattern) <= 80 else pattern[:77] + "..."
        raise ctx.error(
            f"pattern {shown!r} cannot run on the engine's regex (Rust syntax, no look-around or "
            f"backreferences): {problem}",
            where,
            ContractSchemaError,
        )
