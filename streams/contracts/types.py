"""ODCS logical and physical types to polars dtypes, and typed bounds for logicalTypeOptions."""

from __future__ import annotations

import datetime as dt
import math
import re
import zoneinfo
from typing import Any

import polars as pl

from streams.contracts.patterns import ecma_to_rust
from streams.contracts.source import Path_, SourceContext
from streams.errors import ContractSchemaError

__all__ = [
    "NoInstant",
    "bound_value",
    "check_options",
    "check_regex",
    "dtype_for",
    "logical_type",
    "odcs_pattern",
    "regex_problem",
    "sub_microsecond",
    "temporal_value",
]


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


#: The logical type of a property that declares only a physicalType (ODCS makes logicalType optional).
_PHYSICAL_LOGICAL: dict[str, str] = {
    **dict.fromkeys(("text", "varchar", "char", "nvarchar", "nchar", "string", "str", "uuid", "clob"), "string"),
    **dict.fromkeys((*_INT_TYPES, "int2", "int4", "int8", "short", "serial", "bigserial"), "integer"),
    **dict.fromkeys((*_FLOAT_TYPES, "decimal", "numeric", "number", "float8", "float4"), "number"),
    **dict.fromkeys(("bool", "boolean"), "boolean"),
    "date": "date",
    "time": "time",
    **dict.fromkeys(
        ("timestamp", "timestamptz", "datetime", "timestamp_ntz", "timestamp_tz", "timestamp_ltz"), "timestamp"
    ),
}
_SCALARS = "string, integer, number, boolean, date, timestamp"
_KINDS = "string, integer, number, boolean, date, time, timestamp, array of those, object with properties"


def logical_type(prop: dict[str, Any]) -> str | None:
    """The declared logicalType, or the one implied by the physicalType."""
    if prop.get("logicalType") is not None:
        return str(prop["logicalType"])
    physical = str(prop.get("physicalType") or "").strip().lower()
    return _PHYSICAL_LOGICAL.get(re.split(r"[\s(\[]", physical, maxsplit=1)[0]) if physical else None


def dtype_for(prop: dict[str, Any], where: Path_, ctx: SourceContext) -> pl.DataType:
    logical = prop.get("logicalType")
    physical = str(prop.get("physicalType") or "").strip().lower()
    base = re.split(r"[\s(\[]", physical, maxsplit=1)[0] if physical else ""
    if logical is None:
        logical = _PHYSICAL_LOGICAL.get(base)
        if logical is None:
            shown = f"physicalType {prop.get('physicalType')!r}" if physical else "no physicalType"
            raise ctx.error(
                f"not supported: a property without logicalType and with {shown}; the engine needs a type "
                f"to check (declare logicalType: one of {_KINDS})",
                where,
            )
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
        if opts.get("defaultTimezone") is not None:
            _check_time_zone(str(opts["defaultTimezone"]), (*where, "logicalTypeOptions", "defaultTimezone"), ctx)
        if opts.get("timezone") is True or "tz" in base or "with time zone" in physical or "utc" in physical:
            tz = str(opts.get("defaultTimezone") or "UTC")
        return pl.Datetime(unit, tz)  # type: ignore[arg-type]
    if logical == "array":
        items = prop.get("items") or {}
        if items.get("logicalType") in ("string", "integer", "number", "boolean", "date", "timestamp"):
            return pl.List(dtype_for(items, (*where, "items"), ctx))
        if items.get("logicalType") in ("object", "array"):
            raise ctx.error(
                f"not supported: an array of {items.get('logicalType')}s (elements are not addressable by a "
                f"path; nested objects are, as dotted fields); array items may be {_SCALARS}",
                (*where, "items", "logicalType"),
            )
        if not items.get("logicalType"):
            raise ctx.error(
                "not supported: an array without `items.logicalType` (the engine needs the element type)",
                (*where, "logicalType"),
            )
    if logical == "object":  # objects with properties are flattened before (streams.contracts.nested)
        raise ctx.error(
            "not supported: logicalType 'object' without `properties` (nothing inside it to check)",
            (*where, "logicalType"),
        )
    raise ctx.error(f"not supported: logicalType {logical!r}; supported are {_KINDS}", (*where, "logicalType"))


def _check_time_zone(tz: str, where: Path_, ctx: SourceContext) -> None:
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ctx.error(
            f"defaultTimezone {tz!r} is not a known IANA time zone (e.g. UTC, Europe/Paris)", where, ContractSchemaError
        ) from None


_BOUNDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
#: logicalTypeOptions the engine runs, per logical type; others are refused (or noted, see below).
_RUN_OPTIONS: dict[str, frozenset[str]] = {
    "string": frozenset({"minLength", "maxLength", "pattern"}),
    "integer": _BOUNDS | {"multipleOf"},
    "number": _BOUNDS | {"multipleOf"},
    "date": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "time": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "timestamp": frozenset(
        {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "timezone", "defaultTimezone"}
    ),
}
#: Options that describe the source representation rather than a check: noted, not refused.
_NOTED_OPTIONS = {
    "format": "describes how the source writes the value; the engine reads JSON/Arrow types and ISO-8601 text",
    "timezone": "time zones apply to timestamps only",
}


def check_options(prop: dict[str, Any], logical: str, where: Path_, ctx: SourceContext) -> None:
    """Refuse with ``not supported: ...`` every logicalTypeOption the engine would silently skip."""
    opts = prop.get("logicalTypeOptions") or {}
    if not isinstance(opts, dict):
        return
    allowed = _RUN_OPTIONS.get(logical, frozenset())
    low, high = opts.get("minLength"), opts.get("maxLength")
    if isinstance(low, int) and isinstance(high, int) and low > high:  # pandera refuses str_length(low, high) too
        raise ctx.error(
            f"minLength {low} is greater than maxLength {high}: no value can satisfy these bounds (did you swap them?)",
            (*where, "logicalTypeOptions", "minLength"),
            ContractSchemaError,
        )
    _refuse_nonfinite(opts, where, ctx)
    for key in opts:
        if key in allowed:
            continue
        at = (*where, "logicalTypeOptions", key)
        if key == "format" and logical == "string":
            raise ctx.error(
                f"not supported: logicalTypeOptions.format {opts[key]!r} on a string (formats such as email or "
                "uuid are not checked; use `pattern` with a regular expression instead)",
                at,
            )
        if key in _NOTED_OPTIONS:
            ctx.note(f"logicalTypeOptions.{key} is not checked: {_NOTED_OPTIONS[key]}", at)
            continue
        raise ctx.error(f"not supported: logicalTypeOptions.{key} on a {logical} property (it is not checked)", at)


#: an infinite bound no value satisfies (every row would fail): ``minimum: .inf``, ``maximum: -.inf``, ...
_EMPTY_AT_INFINITY = {"minimum": 1, "exclusiveMinimum": 1, "maximum": -1, "exclusiveMaximum": -1}


def _refuse_nonfinite(opts: dict[str, Any], where: Path_, ctx: SourceContext) -> None:
    """NaN bounds (every comparison with NaN is false: ``minimum: .nan`` failed every row, ``exclusiveMaximum:
    .nan`` passed every one) and infinite bounds no value satisfies; JSON, the ODCS schema's language, has neither."""
    for key in (*_EMPTY_AT_INFINITY, "multipleOf"):
        value = opts.get(key)
        if not isinstance(value, float) or math.isfinite(value):
            continue
        at = (*where, "logicalTypeOptions", key)
        if math.isnan(value):
            raise ctx.error(f"{key} is NaN (.nan), which no value compares with; write a number", at,
                            ContractSchemaError)  # fmt: skip
        if key == "multipleOf" or value * _EMPTY_AT_INFINITY[key] > 0:
            raise ctx.error(f"{key} {value} (.inf): no value can satisfy this bound; write a finite number", at,
                            ContractSchemaError)  # fmt: skip


class NoInstant(ValueError):
    """A naive bound that names no single instant in its property's zone (a DST gap or fold)."""


def _one_instant(local: dt.datetime, zone: zoneinfo.ZoneInfo) -> None:
    """Raise :class:`NoInstant` unless the naive ``local`` is one instant in ``zone``: naive values in the data
    there are null (a ``dtype`` failure), and polars refuses a bound in a gap at run time (every row failed)."""
    early, late = local.replace(tzinfo=zone), local.replace(tzinfo=zone, fold=1)
    if early.utcoffset() != late.utcoffset():
        what = (
            "is ambiguous"
            if early.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) == local
            else ("does not exist")
        )
        raise NoInstant(
            f"{local.isoformat()} {what} in {zone.key} (a daylight-saving change); write it with an offset "
            f"(e.g. {early.isoformat()})"
        )


def temporal_value(value: Any, dtype: pl.DataType) -> Any:
    """``value`` (ISO text, or a date, time or datetime) as a bound of a Date, Time or Datetime column
    (``ValueError`` if it is none): a timestamp in the column's zone (polars compares only equal zones; naive
    text is read there, as naive values are), or naive UTC on a naive column."""
    if isinstance(dtype, pl.Datetime):
        v = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
        if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
            v = dt.datetime.combine(v, dt.time())
        if dtype.time_zone is not None:
            zone = zoneinfo.ZoneInfo(dtype.time_zone)
            if v.tzinfo is None:
                _one_instant(v, zone)
            v = v.replace(tzinfo=zone) if v.tzinfo is None else v.astimezone(zone)
        elif v.tzinfo is not None:
            v = v.astimezone(dt.UTC).replace(tzinfo=None)
        return v
    if isinstance(dtype, pl.Date):
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    if isinstance(dtype, pl.Time):
        return value if isinstance(value, dt.time) else dt.time.fromisoformat(str(value))
    raise ValueError(f"{dtype} is not a date, time or timestamp type")


#: a fraction of a second with a non-zero digit past the sixth (finer than Python's microseconds)
_SUB_MICROSECOND = re.compile(r"[.,]\d{6}\d*[1-9]")


def sub_microsecond(value: Any, dtype: pl.DataType) -> str | None:
    """Why ``value`` cannot be a date, time or timestamp bound of ``dtype``: ISO text finer than a microsecond
    (Python's datetimes would truncate it, and a ``timestamp(ns)`` value between the truncated bound and the
    written one would be judged against another bound); None if it can."""
    if isinstance(dtype, (pl.Datetime, pl.Time)) and isinstance(value, str) and _SUB_MICROSECOND.search(value):
        return (
            f"{value!r} is finer than a microsecond, which a bound cannot hold (it would be read truncated); "
            "write it to the microsecond"
        )
    return None


def bound_value(value: Any, dtype: pl.DataType, where: Path_, ctx: SourceContext) -> Any:
    if (finer := sub_microsecond(value, dtype)) is not None:
        raise ctx.error(f"{where[-1]} {finer}", where, ContractSchemaError)
    try:
        if isinstance(dtype, (pl.Date, pl.Datetime, pl.Time)):
            return temporal_value(value, dtype)
        if dtype.is_numeric():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError
            return value
    except NoInstant as exc:
        raise ctx.error(f"{where[-1]} {exc}", where, ContractSchemaError) from None
    except ValueError:
        pass
    else:
        if not (dtype.is_numeric() or isinstance(dtype, (pl.Date, pl.Datetime, pl.Time))):
            raise ctx.error(
                f"not supported: {where[-1]} on a {dtype} property "
                "(bounds apply to numbers, dates, times and timestamps)",
                where,
            )
        return value
    raise ctx.error(f"{where[-1]} {value!r} is not a valid bound for a {dtype} property", where, ContractSchemaError)


#: Patterns longer than this are refused before they reach the regex compiler.
MAX_PATTERN_CHARS = 10_000


def odcs_pattern(pattern: str, where: Path_, ctx: SourceContext) -> str:
    """An ODCS ``pattern`` (ECMA-262, as JSON Schema's) as the engine's regex
    (:func:`streams.contracts.patterns.ecma_to_rust`), refused with ``file:line`` if it cannot run."""
    rust = ecma_to_rust(pattern)
    check_regex(rust, where, ctx, written=pattern)
    return rust


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


def check_regex(pattern: str, where: Path_, ctx: SourceContext, written: str | None = None) -> None:
    """Refuse ``pattern`` with ``file:line`` if the engine's regex cannot run it (quoting ``written``, the
    contract's text, when ``pattern`` was rewritten from it)."""
    problem = regex_problem(pattern)
    if problem is not None:
        text = pattern if written is None else written
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise ctx.error(
            f"pattern {shown!r} cannot run on the engine's regex (Rust syntax, no look-around or "
            f"backreferences): {problem}",
            where,
            ContractSchemaError,
        )
