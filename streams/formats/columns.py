"""Record values to strict wire-dtype columns: the type tests shared by the JSON and Arrow decoders."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import polars as pl

from streams.contracts.model import Field
from streams.formats.jsonvalues import shown
from streams.formats.reasons import MISMATCH_SCHEMA, DeadLetter, Decoded, DecodeReason, empty_frame

__all__ = [
    "WIRE",
    "Batch",
    "Kind",
    "NotAnObject",
    "Part",
    "arrow_value",
    "assemble",
    "fits",
    "fits_list",
    "flatten_structs",
    "json_error",
    "kind_of",
    "lenient",
    "nested_getter",
    "no_mismatches",
    "not_object",
    "shown_value",
    "value_at",
    "wire_value",
]

_INT64 = (-(2**63), 2**63)


class Kind(enum.Enum):
    INT = "int"
    FLOAT = "float"
    STRING = "string"
    BOOL = "bool"
    OTHER = "other"  # nested or exotic declared dtypes: built leniently, the engine judges


WIRE = {Kind.INT: pl.Int64(), Kind.FLOAT: pl.Float64(), Kind.STRING: pl.String(), Kind.BOOL: pl.Boolean()}


def kind_of(dtype: pl.DataType) -> Kind:
    if dtype.is_integer():
        return Kind.INT
    if dtype.is_float() or isinstance(dtype, pl.Decimal):
        return Kind.FLOAT
    if dtype == pl.Boolean:
        return Kind.BOOL
    if dtype == pl.String or isinstance(dtype, (pl.Datetime, pl.Date, pl.Time, pl.Categorical, pl.Enum)):
        return Kind.STRING
    return Kind.OTHER


def fits(kind: Kind, x: Any) -> bool:
    """``x`` (a decoded JSON value) is a value of ``kind``. JSON has one number type: an integer
    field takes a number with a zero fractional part (``517.0``, as JSON Schema's ``integer`` and
    pandas' NaN-able integer columns have it) within int64; see :func:`wire_value`.

    A float equal to -2**63 does not fit: orjson reads an integer literal below int64 as a float, and
    the 1024 integers below -2**63 round to exactly it (``-9223372036854775809`` would pass as the minimum)."""
    t = type(x)
    if kind is Kind.INT:
        if t is float:
            return x.is_integer() and _INT64[0] < x < _INT64[1]
        return t is int and _INT64[0] <= x < _INT64[1]
    if kind is Kind.FLOAT:
        return t is float or (t is int and abs(x) < 2**1023)
    if kind is Kind.STRING:
        return t is str
    return t is bool


def fits_list(item: Kind, x: Any) -> bool:
    """``x`` is null or a JSON array whose elements are null or values of ``item`` (no coercion:
    ``"x"`` is not ``["x"]``, ``1`` is not ``"1"``)."""
    return x is None or (type(x) is list and all(e is None or fits(item, e) for e in x))


def wire_value(kind: Kind, x: Any) -> Any:
    """A value that :func:`fits` ``kind``, as its wire type (an integral float as an int)."""
    return int(x) if kind is Kind.INT and type(x) is float else x


class NotAnObject:
    """The value of a nested field whose enclosing object is not a JSON object (``"customer": "x"``
    for ``customer.email``): no kind :func:`fits` it, so it is a type mismatch of the field, shown as
    the value found in place of the object."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def value_at(d: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The value at a dotted path of a record: None when an enclosing object is missing or null."""
    v = d.get(path[0])
    for key in path[1:]:
        if v is None:
            return None
        if type(v) is not dict:
            return NotAnObject(v)
        v = v.get(key)
    return v


def nested_getter(paths: tuple[tuple[str, ...], ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A record's values at ``paths``; raises ``KeyError`` when it lacks a declared top-level field
    (as ``itemgetter`` does, so the decoder counts it as missing)."""
    tops = tuple(dict.fromkeys(p[0] for p in paths))

    def get(d: dict[str, Any]) -> tuple[Any, ...]:
        for top in tops:
            d[top]
        return tuple(value_at(d, p) for p in paths)

    return get


def shown_value(x: Any) -> str:
    """A mismatching value as JSON text (for a nested field under a non-object: what was found there)."""
    return shown(x.value if type(x) is NotAnObject else x)


class Batch:
    """What the hot loop accumulates: record tuples, their provenance and the result being built."""

    def __init__(self, n_messages: int) -> None:
        self.out = Decoded(pl.DataFrame(), pl.Series(), pl.Series(), [None] * n_messages)
        self.rows: list[tuple[Any, ...]] = []
        self.message: list[int] = []
        self.line: list[int] = []

    def dead(self, i: int, reason: DecodeReason, text: str, line: int | None = None) -> None:
        self.out.dead.append(DeadLetter(i, reason, text, line))


def json_error(value: bytes, exc: orjson.JSONDecodeError, what: str) -> tuple[DecodeReason, str]:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as bad:
        return DecodeReason.NOT_UTF8, f"{what} is not valid UTF-8 ({bad.reason} at byte {bad.start})."
    if not text.strip(" \t\r\n"):  # JSON's whitespace only: a form feed or a no-break space is not blank
        return DecodeReason.EMPTY, f"{what} is blank."
    if exc.msg.startswith("depth limit"):
        return DecodeReason.TOO_DEEP, f"{what} is JSON nested deeper than 1024 levels."
    if exc.msg == "unexpected end of data":
        return DecodeReason.TRUNCATED, f"{what} ends in the middle of a JSON document (at character {exc.pos})."
    return DecodeReason.NOT_JSON, f"{what} is not valid JSON ({exc.msg} at character {exc.pos})."


def not_object(value: Any, what: str) -> tuple[DecodeReason, str]:
    kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
    return DecodeReason.NOT_OBJECT, f"{what} is JSON {kind}, not a JSON object."


Part = tuple[pl.DataFrame, pl.DataFrame, list[int], list[int]]


def no_mismatches() -> pl.DataFrame:
    return empty_frame(MISMATCH_SCHEMA)


def assemble(out: Decoded, parts: list[Part]) -> Decoded:
    frames, mism, msgs, lines, offset = [], [], [], [], 0
    for frame, mismatches, msg_idx, line_idx in parts:
        frames.append(frame)
        if mismatches.height:
            mism.append(mismatches.with_columns(pl.col("row") + offset))
        msgs += msg_idx
        lines += line_idx
        offset += frame.height
    out.frame = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
    out.message = pl.Series("message", msgs, dtype=pl.UInt32)
    out.line = pl.Series("line", lines, dtype=pl.UInt32)
    if mism:
        out.mismatches = pl.concat(mism, how="vertical")
    return out


def lenient(f: Field, values: Sequence[Any]) -> pl.Series:
    try:
        return pl.Series(f.name, values, dtype=f.dtype, strict=False)
    except Exception:  # the engine reports every value of an unbuildable column as a dtype failure
        return pl.Series(f.name, [None if x is None else shown_value(x) for x in values], dtype=pl.String)


def arrow_value(c: pl.Expr, src: pl.DataType, declared: pl.DataType, kind: Kind) -> pl.Expr | None:
    """An Arrow column as its field's wire dtype, null where a value does not fit; None if no value can."""
    if kind is Kind.OTHER:
        return c.cast(declared, strict=False)
    if src == pl.Null:
        return c.cast(WIRE[kind])
    if kind is Kind.INT and src.is_integer():
        return c.cast(pl.Int64, strict=False)
    if kind is Kind.INT and src.is_float():  # integral floats (517.0) within int64, as in JSON
        return pl.when(c.round(0) == c).then(c.cast(pl.Int64, strict=False))
    if kind is Kind.FLOAT and (src.is_integer() or src.is_float() or isinstance(src, pl.Decimal)):
        return c.cast(pl.Float64, strict=False)
    if kind is Kind.BOOL and src == pl.Boolean:
        return c
    if kind is Kind.STRING:
        if src == pl.String or isinstance(src, (pl.Categorical, pl.Enum)):
            return c.cast(pl.String)
        if isinstance(declared, pl.Datetime) and isinstance(src, pl.Datetime):
            if src.time_zone:  # as UTC: `%:z` drops an offset's seconds (Monrovia's -00:44:30 until 1972)
                return c.dt.convert_time_zone("UTC").dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ")
            return c.dt.to_string("%Y-%m-%dT%H:%M:%S%.f")
        if isinstance(declared, pl.Date) and isinstance(src, pl.Date):
            return c.dt.to_string("%Y-%m-%d")
        if isinstance(declared, pl.Time) and isinstance(src, pl.Time):
            return c.dt.to_string("%H:%M:%S%.f")
    return None


def flatten_structs(df: pl.DataFrame, names: Sequence[str]) -> pl.DataFrame:
    """``df`` with a column per dotted ``name`` read from its struct columns (``customer.address.zip``
    as ``pl.col("customer").struct.field("address").struct.field("zip")``), null where the struct
    is null; a path the file does not hold is left out (a missing field). The struct columns stay
    (they are not declared fields: the decoder and the engine ignore them)."""
    cols: list[pl.Expr] = []
    for name in names:
        path = name.split(".")
        if len(path) < 2 or name in df.columns or path[0] not in df.columns:
            continue
        dtype: Any = df.schema[path[0]]
        expr = pl.col(path[0])
        for key in path[1:]:
            if not isinstance(dtype, pl.Struct):
                break
            inner = {f.name: f.dtype for f in dtype.fields}
            if key not in inner:
                break
            expr, dtype = expr.struct.field(key), inner[key]
        else:
            cols.append(expr.alias(name))
    return df.with_columns(cols) if cols else df
