"""Event time, tumbling windows and per-partition watermarks: pure functions over numpy arrays.

* **Event time** of a record: the contract's event-time field (``qstreams.eventTime``)
  or the Kafka record timestamp, as integer epoch milliseconds (:func:`event_times`).
* **Windows** are tumbling and aligned to the epoch: ``[start, start + size)``, start
  inclusive, end exclusive (:func:`window_starts`).
* **Watermark** of a source partition: the newest event time seen on it minus the
  allowed lateness. A record whose event time is beyond the wall clock plus the
  maximum clock skew is *skewed*: it is judged in its own window but does not
  advance the watermark. A record is *late* when its window had already closed on
  its partition when it arrived (window end ``<=`` the watermark before it): it is
  routed like any other but counted only as ``late`` (:func:`observe`). Records are
  taken in offset order, so who is late does not depend on how batches are cut.
* A window of a topic is **final** when the watermark of every partition of the topic
  has reached its end, or the partition has been idle (no record, processing time)
  for the idle-close delay, so the last window of a quiet stream closes too
  (:func:`final_through`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

__all__ = [
    "ALL_FINAL",
    "NO_TIME",
    "EventTimes",
    "Observation",
    "PartitionClock",
    "event_times",
    "final_through",
    "ms_to_datetime",
    "newest_through",
    "observe",
    "window_starts",
]

_NONE = np.iinfo(np.int64).min // 4  # "no event time yet" in running maxima
NO_TIME = _NONE

#: :func:`final_through` when every partition is idle: every window that has data is final.
ALL_FINAL = 2**62


def ms_to_datetime(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def window_starts(event_ms: np.ndarray, size_ms: int) -> np.ndarray:
    """The start (epoch ms) of the tumbling window holding each event time (floor to a multiple of the size)."""
    if size_ms <= 0:
        raise ValueError(f"a window must last longer than 0 ms, got {size_ms}")
    ts = np.asarray(event_ms, dtype=np.int64)
    return ts - np.mod(ts, size_ms)


@dataclass(frozen=True, slots=True, eq=False)
class EventTimes:
    """Event time (epoch ms) per record, and which records had no usable event-time value.

    A record whose field is missing or unparseable gets its Kafka timestamp here (so it
    still lands in a window) and ``bad`` is True for it: it is quarantined with that reason.
    Without an event-time field the Kafka timestamp is the event time, and a record without
    one (negative: Kafka's -1, or None read as -1) is ``bad`` too. A negative ``ms`` where
    ``bad`` is a missing Kafka timestamp: :func:`observe` places such a record (``missing``).
    """

    ms: np.ndarray  # int64
    bad: np.ndarray  # bool


def event_times(frame: pl.DataFrame, field: str | None, kafka_ms: np.ndarray) -> EventTimes:
    """Event times of the rows of ``frame`` (decoded records, in order) from ``field``, or ``kafka_ms``.

    ``field`` may be a Datetime (any unit or zone), a Date or ISO-8601 text; a column
    absent from ``frame`` makes every row bad. Never raises on data.
    """
    fallback = np.asarray(kafka_ms, dtype=np.int64)
    if len(fallback) != frame.height:
        raise ValueError(f"{len(fallback)} Kafka timestamps for {frame.height} rows")
    if field is None:
        return EventTimes(fallback.copy(), fallback < 0)
    if field not in frame.columns:
        return EventTimes(fallback.copy(), np.ones(frame.height, dtype=bool))
    column = frame.get_column(field)
    try:
        if column.dtype == pl.String:
            column = column.str.to_datetime(time_zone="UTC", strict=False)
        elif column.dtype == pl.Date:
            column = column.cast(pl.Datetime("ms"))
        if not isinstance(column.dtype, pl.Datetime):
            raise TypeError(f"{column.dtype} is not a timestamp")
        epoch = column.dt.epoch("ms")
    except Exception:  # a column we cannot read as time: every row is bad, none is lost
        return EventTimes(fallback.copy(), np.ones(frame.height, dtype=bool))
    bad = epoch.is_null().to_numpy()
    ms = epoch.fill_null(0).to_numpy().astype(np.int64, copy=True)
    ms[bad] = fallback[bad]
    return EventTimes(ms, np.asarray(bad, dtype=bool))


@dataclass(frozen=True, slots=True)
class PartitionClock:
    """The event-time clock of one source partition.

    ``max_event_ms``: newest event time seen (skewed records excluded), None before any;
    ``last_active_ms``: processing time of the last record that moved the watermark (or of the first look at
    the partition), for the idle close.
    """

    max_event_ms: int | None = None
    last_active_ms: int | None = None

    def watermark(self, lateness_ms: int) -> int | None:
        """Newest event time minus the allowed lateness (None before the first record)."""
        return None if self.max_event_ms is None else self.max_event_ms - lateness_ms

    def idle(self, now_ms: int, idle_ms: int) -> bool:
        """No record for ``idle_ms`` of processing time (a partition never seen is not idle by itself)."""
        return self.last_active_ms is not None and now_ms - self.last_active_ms >= idle_ms

    def merge(self, other: PartitionClock) -> PartitionClock:
        """The later of two views of one partition's clock (watermarks never go back)."""

        def later(a: int | None, b: int | None) -> int | None:
            return b if a is None else a if b is None else max(a, b)

        return PartitionClock(
            later(self.max_event_ms, other.max_event_ms), later(self.last_active_ms, other.last_active_ms)
        )


@dataclass(frozen=True, slots=True, eq=False)
class Observation:
    """What :func:`observe` found in a run of records of one partition."""

    late: np.ndarray  # bool per record: its window had closed on this partition
    skewed: np.ndarray  # bool per record: beyond wall clock + max skew (did not advance the watermark)
    current: np.ndarray  # int64 per record: start of the window being filled when it arrived
    clock: PartitionClock  # the clock after the run
    event_ms: np.ndarray  # int64 per record: its event time, or where a record in ``missing`` is placed


def observe(
    clock: PartitionClock,
    event_ms: np.ndarray,
    *,
    now_ms: int,
    window_ms: int,
    lateness_ms: int,
    max_skew_ms: int,
    timeless: np.ndarray | None = None,
    missing: np.ndarray | None = None,
) -> Observation:
    """Advance one partition's clock over records in offset order, flagging late and skewed ones.

    A record is late when the end of its window is not after the watermark as it stood
    just before the record (newest earlier event time minus the lateness). ``current``
    is the window of the newest event time seen before each record, where a late
    record is counted. Records where ``timeless`` is True have no event time (their
    Kafka timestamp places them): like skewed ones, they do not advance the watermark.
    Records where ``missing`` is True (a subset of ``timeless``) have no time at all (no Kafka timestamp either):
    they are placed at the newest event time before them, in the window being filled (never late), or, before
    any, at ``now_ms``.
    """
    ts = np.asarray(event_ms, dtype=np.int64)
    if missing is not None:
        missing = np.asarray(missing, dtype=bool)
        timeless = missing if timeless is None else np.asarray(timeless, dtype=bool) | missing
    skewed = ts > now_ms + max_skew_ms
    still = skewed if timeless is None else skewed | np.asarray(timeless, dtype=bool)
    first = clock.max_event_ms if clock.max_event_ms is not None else _NONE
    running = np.maximum.accumulate(np.concatenate(([first], np.where(still, _NONE, ts))))
    before = running[:-1]  # newest (non-skewed) event time before each record
    seen = before > _NONE
    if missing is not None and missing.any():
        ts = np.where(missing, np.where(seen, before, now_ms), ts)
    late = seen & (window_starts(ts, window_ms) + window_ms <= before - lateness_ms)
    current = window_starts(np.where(seen, before, ts), window_ms)
    max_event = int(running[-1]) if running[-1] > _NONE else None
    # only records that move the watermark keep the partition active: one bringing nothing but records without
    # an event time (or skewed ones) goes idle, and stops holding the topic's windows back
    moved = bool(len(ts)) and not bool(still.all())
    active = now_ms if moved or clock.last_active_ms is None else clock.last_active_ms
    return Observation(late, skewed, current, PartitionClock(max_event, active), ts)


def newest_through(
    clocks: Mapping[int, PartitionClock], partitions: np.ndarray, event_ms: np.ndarray, moves: np.ndarray
) -> np.ndarray:
    """Per record (taken in the order given, per partition), the newest event time of its partition once it is
    taken: the clock's before the run, raised by the records where ``moves`` (those that move the watermark).
    ``NO_TIME`` while a partition has none."""
    parts = np.asarray(partitions, dtype=np.int64)
    out = np.full(len(parts), NO_TIME, dtype=np.int64)
    ts = np.where(np.asarray(moves, dtype=bool), np.asarray(event_ms, dtype=np.int64), NO_TIME)
    for p in np.unique(parts).tolist():
        rows = np.flatnonzero(parts == p)
        clock = clocks.get(p)
        first = clock.max_event_ms if clock is not None and clock.max_event_ms is not None else NO_TIME
        out[rows] = np.maximum.accumulate(np.concatenate(([first], ts[rows])))[1:]
    return out


def final_through(
    clocks: Mapping[int, PartitionClock],
    partitions: Iterable[int],
    *,
    now_ms: int,
    lateness_ms: int,
    idle_ms: int,
) -> int | None:
    """The time up to which every window of a topic is final: windows ending at or before it.

    The minimum watermark over the topic's ``partitions``, leaving out idle ones; a
    partition without a clock holds everything back (it may still bring records).
    :data:`ALL_FINAL` when every partition is idle; None while nothing is final.
    """
    marks: list[int] = []
    for p in partitions:
        clock = clocks.get(p)
        if clock is None:
            return None
        if clock.idle(now_ms, idle_ms):
            continue
        mark = clock.watermark(lateness_ms)
        if mark is None:
            return None
        marks.append(mark)
    return min(marks) if marks else ALL_FINAL
