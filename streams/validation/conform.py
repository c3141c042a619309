"""Conformance: batch columns cast to their declared dtypes (see the engine's docstring).

A column whose dtype differs from ``Field.dtype`` is cast with ``strict=False``; a value
that is non-null before the cast and null (or different) after it is a mismatch. Text
timestamps are parsed per batch (Arrow's ISO-8601 parser when every value fits).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from polars._typing import TimeUnit

# ISO-8601 layouts polars tries when Arrow cannot parse a whole batch ("%#z": Z, +hh:mm or +hhmm); a space
# may stand for the T, with or without seconds, as polars' inferred `str.to_datetime` reads it
ISO = tuple(f"%Y-%m-%d{sep}{t}{z}" for t in ("%H:%M:%S%.f", "%H:%M") for sep in ("T", " ") for z in ("%#z", ""))
ISO += ("%Y-%m-%d",)
# the layouts of a text time (`HH:MM[:SS[.f]]`): JSON strings, CSV cells
TIME = ("%H:%M:%S%.f", "%H:%M")


def to_time(c: pl.Expr) -> pl.Expr:
    """Text ``HH:MM[:SS[.f]]`` as a time, null where it is none."""
    return pl.coalesce(c.str.to_time(f, strict=False) for f in TIME)


def conform_column(name: str, src: pl.DataType, dst: pl.DataType) -> tuple[pl.Expr, pl.Expr | None]:
    """``(conformed value, mismatch mask or None)`` for a column of dtype ``src`` declared ``dst``."""
    c = pl.col(name)
    present = c.is_not_null()
    if src == pl.Null:
        return c.cast(dst), None
    if src.is_numeric() and dst.is_numeric():
        out = c.cast(dst, strict=False)
        if src.is_float() and dst.is_float():
            bad = present & (out.is_null() | (out.is_infinite() & c.is_finite()))
        else:
            bad = present & out.cast(src, strict=False).ne_missing(c)
        return pl.when(bad).then(None).otherwise(out), bad
    if src == pl.String and dst == pl.Date:
        out = c.str.to_date("%Y-%m-%d", strict=False)
    elif src == pl.String and dst == pl.Time:
        out = to_time(c)
    elif isinstance(dst, pl.Datetime) and isinstance(src, pl.Datetime):
        out = to_datetime(c, src, dst)
    elif src in (pl.Categorical, pl.Enum) and dst == pl.String:
        return c.cast(pl.String), None
    elif src == pl.String and isinstance(dst, (pl.Enum, pl.Categorical)):
        out = c.cast(dst, strict=False)
    else:
        return pl.lit(None, dtype=dst), present
    return out, present & out.is_null()


def to_datetime(c: pl.Expr, src: pl.DataType, dst: pl.Datetime, formats: Sequence[str] = ISO) -> pl.Expr:
    """Datetime (another unit/zone) or ISO-8601 text as ``dst``; text tries each of ``formats``."""
    unit, tz = dst.time_unit, dst.time_zone

    def localize(naive: pl.Expr) -> pl.Expr:
        return naive.dt.replace_time_zone(tz, ambiguous="null", non_existent="null") if tz else naive

    def from_aware(aware: pl.Expr) -> pl.Expr:
        utc = aware.dt.convert_time_zone(tz or "UTC")
        return utc if tz else utc.dt.replace_time_zone(None)

    if isinstance(src, pl.Datetime):

        def convert(values: pl.Expr, to: TimeUnit) -> pl.Expr:
            cast = values.dt.cast_time_unit(to)
            return from_aware(cast) if src.time_zone else localize(cast)

        if unit != "ns":
            return convert(c, unit)
        # a value beyond the nanosecond range made polars' cast raise for the whole column (every row failed), and
        # a local time whose instant leaves it (2262-04-11T23:00 in New York) wrapped: both are null, on their row
        inside = c.dt.epoch("us").is_between(-(2**63) // 1000 + 1, (2**63 - 1) // 1000)
        return _unwrapped(convert(pl.when(inside).then(c), "ns"), convert(c, "us"))

    def parse(f: str, in_unit: TimeUnit | None) -> pl.Expr:
        return (from_aware if f.endswith("z") else localize)(c.str.to_datetime(f, time_unit=in_unit, strict=False))

    parsed = [parse(f, unit) for f in formats]
    out = parsed[0] if len(parsed) == 1 else pl.coalesce(parsed)
    if unit != "ns":
        return out
    # polars parses text beyond the nanosecond range (1677-09-21 to 2262-04-11) into a wrapped value (2400-01-01
    # read 1815-06-13) instead of null: a value is kept where it is the instant its microsecond parse reads
    wide = [parse(f, "us") for f in formats]
    return _unwrapped(out, wide[0] if len(wide) == 1 else pl.coalesce(wide))


def _unwrapped(ns: pl.Expr, us: pl.Expr) -> pl.Expr:
    """``ns`` where it is the instant of its microsecond reading ``us``, else null: polars wraps an instant beyond
    the nanosecond range (1677-09-21 to 2262-04-11) silently where a microsecond value holds it."""
    return pl.when(ns.dt.epoch("us") == us.dt.epoch("us")).then(ns)


def _first(values: pl.Series) -> Any:
    present = values.is_not_null()
    return values[present.arg_max() or 0] if present.any() else None


def arrow_timestamps(values: pl.Series, dst: pl.Datetime) -> pl.Series | None:
    """ISO-8601 text parsed by Arrow, 10x faster than polars' formats, or None unless every
    value parses with a zone designator (or every one without, like the first value)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if (first := _first(values)) is None:
        return None
    # Arrow also reads an hour alone (`2026-01-02T03`), which no layout of ISO (nor polars) reads: such a
    # value would pass or fail with the batch it came in. A date, or a time with its minutes, only.
    if not (values.str.len_bytes().eq(10) | values.str.find(":", literal=True).eq_missing(13)).all():
        return None
    zoned = first[-1:] in ("Z", "z") or re.search(r"[+-]\d\d:?\d\d$", first[10:]) is not None
    try:  # a failing cast is slow (~0.6 us a value): the first value picks the one attempt
        parsed = pl.Series(values.name, pc.cast(values.to_arrow(), pa.timestamp("ns", "UTC" if zoned else None)))
    except Exception:  # some value has another shape, or is out of the ns range
        return None
    return parsed.to_frame().select(to_datetime(pl.col(values.name), parsed.dtype, dst)).to_series()


def batch_format(values: pl.Series, dst: pl.Datetime) -> str:
    """The ISO-8601 layout of the batch's first non-null value."""
    sample = pl.DataFrame({"v": [_first(values)]}, schema={"v": pl.String})
    for fmt in ISO:
        if sample.select(to_datetime(pl.col("v"), pl.String(), dst, (fmt,))).to_series().null_count() == 0:
            return fmt
    return ISO[0]


def parse_text_timestamps(
    df: pl.DataFrame, exprs: list[pl.Expr | pl.Series], temporal: dict[str, tuple[str, pl.Datetime]]
) -> tuple[list[pl.Expr | pl.Series], dict[str, tuple[str, pl.Datetime]]]:
    """Add the conformance of the text timestamp columns ``temporal`` (column -> (mismatch mask,
    dtype)) to ``exprs``: Arrow's parse where every value fits, else the layout of the batch's
    first value; returns the columns parsed the slow way (their misfits need a retry)."""
    slow = {}
    for name, (mask, dst) in temporal.items():
        fast = arrow_timestamps(df.get_column(name), dst)
        if fast is not None:  # null where the instant leaves the unit's range (a local time near 2262 in ns)
            exprs += [fast, (df.get_column(name).is_not_null() & fast.is_null()).alias(mask)]
        else:
            slow[name] = (mask, dst)
    for name, (mask, dst) in slow.items():
        value = to_datetime(pl.col(name), pl.String(), dst, (batch_format(df.get_column(name), dst),))
        exprs += [value.alias(name), (pl.col(name).is_not_null() & value.is_null()).alias(mask)]
    return exprs, slow


def retry_misfits(
    base: pl.DataFrame, slow: dict[str, tuple[str, pl.Datetime]], originals: dict[str, str]
) -> pl.DataFrame:
    """Re-parse, with every ISO-8601 layout, the rows of ``slow`` columns the batch layout missed
    (a batch with mixed layouts costs ~1.5 us a row)."""
    for name, (mask, dst) in slow.items():
        bad = base.get_column(mask)
        if bad.any():
            rows = bad.arg_true()
            text = base.get_column(originals[name]).gather(rows).to_frame("v")
            retry = text.select(to_datetime(pl.col("v"), pl.String(), dst)).to_series()
            fixed = base.get_column(name).clone().scatter(rows, retry)
            base = base.with_columns(fixed, bad.clone().scatter(rows, retry.is_null()))
    return base


def conform_batch(
    df: pl.DataFrame,
    stage1: list[pl.Expr],
    temporal: dict[str, tuple[str, pl.Datetime]],
    originals: dict[str, str],
) -> pl.DataFrame:
    """The batch conformed by the plan's ``stage1`` expressions and its text timestamps ``temporal``.
    Text timestamps go through Arrow's ISO-8601 parser (10x faster than polars' chrono layouts) when
    every value parses; otherwise they are parsed in the layout of the batch's first value and the
    rows it does not fit are retried with every layout (``originals``: column -> its original values)."""
    if not stage1 and not temporal:
        return df
    exprs, slow = parse_text_timestamps(df, [*stage1], temporal)
    base = df.with_columns(exprs) if exprs else df
    return retry_misfits(base, slow, originals) if slow else base
