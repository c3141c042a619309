"""Failure cases of a few rows rendered in plain Python, byte for byte as polars renders them.

The worker reads the first twenty failure cases of each failing rule. Rendering them through polars (a gather,
a cast to text, for a row-level expression a multi-threaded gather of every column, a struct and a query for
``json_encode``) costs more CPU than the values: :func:`value_texts` gives a value's text as ``cast(pl.String)``
does, :func:`rows_json` a row as ``struct.json_encode`` does, for the dtypes whose polars text they reproduce
exactly (strings, integers, Booleans, floats, nulls; for JSON also UTC or naive datetimes and dates within
years 1 to 9999). They return None for anything else, which the caller then renders through polars.
``tests/unit/validation/test_pyrender.py`` compares both with polars over generated values of every such dtype.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta
from json.encoder import encode_basestring  # type: ignore[attr-defined]  # (C; ensure_ascii=False escaping)

import polars as pl

from streams.validation.report import REDACTED

_NULL = "null"
_INTEGERS = frozenset({pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64})
_NANOS = {"ns": 1, "us": 1_000, "ms": 1_000_000}
_EPOCH_DAY = date(1970, 1, 1)
_ONE_BY_ONE = 24  # values up to which value_texts reads them one by one
_TEXT_DTYPES = frozenset({*_INTEGERS, pl.String, pl.Float64, pl.Boolean, pl.Null})


def value_texts(column: pl.Series, rows: Sequence[int], redacted: bool = False) -> list[str | None] | None:
    """The text of each value of ``column`` at ``rows`` as ``cast(pl.String)`` gives it (``[REDACTED]`` for every
    non-null value when ``redacted``), or None for a dtype rendered only by polars (a Float32: its shortest digits
    are a float's). A few values are read one by one (a gather costs a Series, ~10 µs)."""
    dtype = column.dtype
    if dtype not in _TEXT_DTYPES:
        return None
    if len(rows) <= _ONE_BY_ONE:
        listed = [column[i] for i in rows]
    else:
        listed = column[pl.Series(rows, dtype=pl.UInt32)].to_list()
    if redacted:
        return [None if v is None else REDACTED for v in listed]
    if dtype == pl.String:
        return listed
    if dtype == pl.Float64:
        return [None if v is None else _float_text(v) for v in listed]
    if dtype == pl.Boolean:
        return [None if v is None else "true" if v else "false" for v in listed]
    return [None if v is None else str(v) for v in listed]  # (integers; Null: every value None)


def rows_json(columns: Sequence[tuple[str, pl.Series, bool]]) -> list[str] | None:
    """The rows of ``columns`` (``(name, values, redacted)``, values of equal length) as JSON objects, as
    ``struct.json_encode`` gives them (a redacted column: ``"[REDACTED]"`` for every non-null value), or None
    when a column's dtype (or a value: a datetime past year 9999) has no rendering here."""
    encoded: list[list[str]] = []
    for _, values, redacted in columns:
        texts = _redacted(values) if redacted else _texts(values)
        if texts is None:
            return None
        encoded.append(texts)
    keys = ",".join(encode_basestring(name).replace("%", "%%") + ":%s" for name, _, _ in columns)
    template = "{" + keys + "}"
    return [template % row for row in zip(*encoded, strict=True)]


def _redacted(values: pl.Series) -> list[str]:
    shown = encode_basestring("[REDACTED]")
    nulls = values.null_count()
    if nulls in (0, len(values)):
        return [_NULL if nulls else shown] * len(values)
    return [_NULL if null else shown for null in values.is_null().to_list()]


def _texts(values: pl.Series) -> list[str] | None:
    """The JSON text of each value of ``values``, or None for a dtype rendered only by polars."""
    dtype = values.dtype
    if dtype == pl.String:
        return [_NULL if v is None else encode_basestring(v) for v in values.to_list()]
    if dtype in _INTEGERS:
        return [_NULL if v is None else str(v) for v in values.to_list()]
    if dtype in (pl.Float64, pl.Float32):  # (a Float32 as the double it is: to_list gives it)
        return [_float(v) for v in values.to_list()]
    if dtype == pl.Boolean:
        return [_NULL if v is None else "true" if v else "false" for v in values.to_list()]
    if dtype == pl.Null:
        return [_NULL] * len(values)
    if isinstance(dtype, pl.Datetime) and dtype.time_zone in (None, "UTC") and dtype.time_unit in _NANOS:
        try:
            return _datetimes(values.cast(pl.Int64).to_list(), _NANOS[dtype.time_unit], dtype.time_zone)
        except OverflowError:  # before year 1 or after 9999: polars writes years Python has not
            return None
    if dtype == pl.Date:
        try:
            days = values.cast(pl.Int32).to_list()
            return [_NULL if v is None else f'"{_EPOCH_DAY + timedelta(days=v)}"' for v in days]
        except OverflowError:
            return None
    return None


def _float(value: float | None) -> str:
    """A double as polars writes it in JSON: null for NaN and infinities, else as :func:`_float_text`."""
    if value is None:
        return _NULL
    text = repr(value)
    if "e" not in text and "n" not in text:  # (most values: positional; "nan" and "inf" hold an n)
        return text
    return _float_text(value) if math.isfinite(value) else _NULL


def _float_text(value: float) -> str:
    """A double as polars casts it to text: ``NaN``, ``inf``, ``-inf``; the shortest digits that read back
    (Python's ``repr``), positional from 1e-5 up to 1e16, else with an exponent written ``e-7``, ``e+16``."""
    text = repr(value)
    at = text.find("e")
    if at < 0 and "n" in text:  # (nan, inf, -inf)
        return "NaN" if math.isnan(value) else "inf" if value > 0 else "-inf"
    if at < 0:
        return text
    mantissa, exponent = text[:at], int(text[at + 1 :])
    if exponent == -5:  # (repr switches to an exponent below 1e-4, polars below 1e-5)
        sign, digits = ("-", mantissa[1:]) if mantissa[0] == "-" else ("", mantissa)
        return f"{sign}0.0000{digits.replace('.', '')}"
    return f"{mantissa}e{'+' if exponent > 0 else '-'}{abs(exponent)}"


def _datetimes(values: list[int | None], nanos_per_unit: int, zone: str | None) -> list[str]:
    """Datetimes (units since the epoch) as polars writes them in JSON: RFC 3339 with ``+00:00`` in UTC, a space
    between date and time when naive; the fraction in 3, 6 or 9 digits, as few as it needs. A day's date is
    written once (a batch's rows share a few days). OverflowError out of years 1 to 9999."""
    days: dict[int, str] = {}
    sep, suffix = (" ", '"') if zone is None else ("T", '+00:00"')
    out = []
    for value in values:
        if value is None:
            out.append(_NULL)
            continue
        seconds, nanos = divmod(value * nanos_per_unit, 1_000_000_000)
        day, seconds = divmod(seconds, 86_400)
        date_text = days.get(day)
        if date_text is None:
            date_text = days[day] = f'"{_EPOCH_DAY + timedelta(days=day)}{sep}'
        hours, seconds = divmod(seconds, 3_600)
        minutes, seconds = divmod(seconds, 60)
        if not nanos:
            fraction = ""
        elif not nanos % 1_000_000:
            fraction = f".{nanos // 1_000_000:03d}"
        elif not nanos % 1_000:
            fraction = f".{nanos // 1_000:06d}"
        else:
            fraction = f".{nanos:09d}"
        out.append(f"{date_text}{hours:02d}:{minutes:02d}:{seconds:02d}{fraction}{suffix}")
    return out
