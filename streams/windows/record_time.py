"""One record's event time, read as the worker reads it, for the labels join's per-record path.

The worker reads an event-time field (``qstreams.eventTime``, a ``timestamp`` or ``date`` property) from a decoded,
conformed frame (:func:`~streams.windows.clock.event_times`): a JSON value of such a property must be text (a number
is a type mismatch: no event time), ISO-8601 as the engine's layouts read it (``YYYY-MM-DD``, then ``T`` or a space
and ``HH:MM[:SS[.f]]``, then optionally ``Z`` or an offset), naive text read in the property's zone, truncated to the
millisecond. :func:`record_time_ms` gives the same reading of one value: the common shapes by a regular expression
(microseconds), any other text through the worker's own conformance of a one-row batch (~1 ms: rare shapes only), so
a value has one time, or none, in both. ``tests/unit/windows/test_record_time.py`` checks it against the worker's
reading.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from streams.validation.conform import conform_batch, conform_column
from streams.windows.clock import event_times

__all__ = ["LABEL_TIME", "record_time_ms"]

#: the type a label time is read as: a ``timestamp`` property without a zone (naive text is UTC)
LABEL_TIME = pl.Datetime("us")

_STAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?(Z|([+-])(\d\d):(\d\d))?")
_EPOCH = datetime(1970, 1, 1)
_MS = timedelta(milliseconds=1)


def record_time_ms(value: Any, dtype: pl.DataType) -> int | None:
    """The event time (epoch ms) of ``value``, a decoded JSON value of a property of ``dtype`` (a ``Datetime`` or
    ``Date``), as the worker reads it; None where the worker finds no event time (not text, not ISO-8601)."""
    if not isinstance(value, str):
        return None  # a timestamp or date property takes JSON text: a number fails its type
    fast = _fast(value, dtype)
    return fast if fast is not None else _conformed(value, dtype)


def _fast(text: str, dtype: pl.DataType) -> int | None:
    """The common shapes, exactly as the engine reads them (None: let the engine read it)."""
    m = _STAMP.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, zone, sign, oh, om = m.groups()
    if int(year) < 1970:  # the engine's truncation before the epoch: left to the engine
        return None
    if dtype == pl.Date:
        if hour is not None or zone is not None:
            return None
        try:
            return (date(int(year), int(month), int(day)) - _EPOCH.date()).days * 86_400_000
        except ValueError:
            return None
    if not isinstance(dtype, pl.Datetime) or (hour is None and zone is not None):
        return None
    if dtype.time_unit == "ns" and not 1678 <= int(year) <= 2261:
        return None  # near or beyond the nanosecond range (1677-09-21 to 2262-04-11): the engine's reading
    if zone is None and dtype.time_zone not in (None, "UTC"):
        return None  # naive text in a zone (and its DST gaps and folds): the engine's reading
    try:
        naive = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    ms = (naive - _EPOCH) // _MS
    if fraction:
        digits = {"ms": 3, "us": 6, "ns": 9}[dtype.time_unit or "us"]  # parsed in the property's unit
        ms += int(fraction[:digits].ljust(digits, "0")) // 10 ** (digits - 3)
    if sign is not None:
        if int(oh) > 23 or int(om) > 59:
            return None
        ms -= (1 if sign == "+" else -1) * (int(oh) * 60 + int(om)) * 60_000
    return ms


def _conformed(text: str, dtype: pl.DataType) -> int | None:
    """The worker's own reading: a one-row batch conformed as the engine conforms a batch, then its event time."""
    frame = pl.DataFrame({"t": [text]}, schema={"t": pl.String})
    if isinstance(dtype, pl.Datetime):
        frame = conform_batch(frame.with_columns(pl.col("t").alias("o")), [], {"t": ("m", dtype)}, {"t": "o"})
    else:
        frame = frame.select(conform_column("t", pl.String(), dtype)[0].alias("t"))
    times = event_times(frame.select("t"), "t", np.full(1, -1, dtype=np.int64))
    return None if bool(times.bad[0]) else int(times.ms[0])
