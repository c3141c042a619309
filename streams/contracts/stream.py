"""Stream-time settings of a schema object: ``qstreams.*`` schema-level ``customProperties``.

ODCS lets a schema object carry ``customProperties`` (a list of ``{property, value}``).
quality-streams reads these keys (any other ``qstreams.*`` key is refused, so a typo
is an error rather than a silently ignored setting; keys of other tools are ignored):

==========================  ===========================================================
``qstreams.eventTime``      the field holding each record's event time (a ``timestamp``
                            or ``date`` property); default: the Kafka record timestamp
``qstreams.window``         tumbling window size, e.g. ``1m`` (default: setting
                            ``STREAMS_WINDOW_SECONDS``)
``qstreams.allowedLateness``  how far behind the partition's newest event time a record
                            may arrive and still count in its window, e.g. ``30s``
                            (default: ``STREAMS_ALLOWED_LATENESS_SECONDS``)
``qstreams.uniqueWithin``   uniqueness horizon of ``unique`` / ``primaryKey`` fields on the
                            stream, e.g. ``7d`` (default: ``STREAMS_UNIQUE_HORIZON_SECONDS``)
==========================  ===========================================================

Durations are a number and a unit (``ms``, ``s``, ``m``, ``h``, ``d``; ``90s``,
``1.5h``), a bare number of seconds, or ISO-8601 (``PT1M30S``, ``P1D``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from streams.contracts.source import Path_, SourceContext
from streams.errors import ContractSchemaError

__all__ = ["STREAM_KEYS", "DurationError", "StreamSpec", "parse_duration", "parse_stream_spec"]

PREFIX = "qstreams."
EVENT_TIME = "qstreams.eventTime"
WINDOW = "qstreams.window"
ALLOWED_LATENESS = "qstreams.allowedLateness"
UNIQUE_WITHIN = "qstreams.uniqueWithin"
#: Every ``qstreams.*`` key this module reads (other ``qstreams.*`` keys may be claimed by later layers).
STREAM_KEYS = (EVENT_TIME, WINDOW, ALLOWED_LATENESS, UNIQUE_WITHIN)
#: ``qstreams.*`` keys read (and checked) by other layers: response policies (issue 12), drift (issue 11).
OTHER_KEYS = ("qstreams.policies", "qstreams.reference", "qstreams.prediction")

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_SIMPLE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d)?\s*$")
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d)")
_COMPOUND = re.compile(r"^(?:\d+(?:\.\d+)?\s*(?:ms|s|min|m|h|d)\s*){2,}$")
_ISO = re.compile(r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


class DurationError(ValueError):
    """A duration text that cannot be read; the message shows the accepted forms."""


def parse_duration(value: Any, *, require_unit: bool = False) -> int:
    """A duration in whole milliseconds: ``"30s"``, ``"1h30m"``, ``"250ms"``, ``"PT1M"`` or seconds (a number).

    The one duration reader of the package (stream specs, response policies, CLI options).
    ``require_unit`` refuses bare numbers (``90``, ``"90"``), for places where a unit-less
    number is more likely a mistake than seconds. Raises :class:`DurationError` for anything
    else (negative, empty, unknown unit, bool).
    """
    forms = "write e.g. 30s, 1m, 1h30m, 2d, 250ms or PT1M"
    if isinstance(value, bool):
        raise DurationError(f"{value!r} is not a duration; {forms}")
    if isinstance(value, (int, float)):
        if require_unit:
            raise DurationError(f"{value!r} has no unit; {forms}")
        if not value >= 0:  # negative or NaN
            raise DurationError(f"a duration cannot be negative or NaN, got {value!r}")
        return _bounded(float(value) * 1000, value)
    text = str(value).strip()
    m = _SIMPLE.match(text)
    if m and not (require_unit and m.group(2) is None):
        return _bounded(float(m.group(1)) * _UNITS_MS[m.group(2) or "s"], value)
    if _COMPOUND.match(text):
        return _bounded(sum(float(n) * _UNITS_MS[u] for n, u in _PART.findall(text)), value)
    iso = _ISO.match(text.upper())
    if iso and text.upper() not in ("P", "PT") and any(iso.groups()):
        days, hours, minutes, seconds = (float(g) if g else 0.0 for g in iso.groups())
        return _bounded((((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000, value)
    raise DurationError(f"{value!r} is not a duration; {forms}")


#: the longest duration taken: ~10,000 years in ms (event times are int64 ms; a longer window overflows them)
MAX_DURATION_MS = 10_000 * 366 * 86_400_000


def _bounded(ms: float, value: Any) -> int:
    if not ms <= MAX_DURATION_MS:  # infinite, or beyond any clock
        raise DurationError(f"{value!r} is longer than any clock holds (at most ~10,000 years)")
    return round(ms)


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """How a schema object is judged on the stream. ``None`` means "the setting's default".

    ``event_time``: the field holding the event time (None: the Kafka record timestamp).
    Durations are in milliseconds.
    """

    event_time: str | None = None
    window_ms: int | None = None
    allowed_lateness_ms: int | None = None
    unique_within_ms: int | None = None

    def resolve(self, *, window_s: float, lateness_s: float, unique_s: float) -> StreamSpec:
        """This spec with every unset duration taken from the given defaults (seconds)."""
        return StreamSpec(
            event_time=self.event_time,
            window_ms=self.window_ms if self.window_ms is not None else round(window_s * 1000),
            allowed_lateness_ms=self.allowed_lateness_ms
            if self.allowed_lateness_ms is not None
            else round(lateness_s * 1000),
            unique_within_ms=self.unique_within_ms if self.unique_within_ms is not None else round(unique_s * 1000),
        )


def _entries(custom: Any, where: Path_, ctx: SourceContext) -> list[tuple[str, Any, Path_]]:
    """``(property, value, path)`` of ODCS customProperties (a list of {property, value}; a mapping is accepted)."""
    if custom is None:
        return []
    if isinstance(custom, Mapping):
        return [(str(k), v, (*where, str(k))) for k, v in custom.items()]
    if not isinstance(custom, Sequence) or isinstance(custom, str):
        raise ctx.error("customProperties must be a list of {property, value}", where, ContractSchemaError)
    out = []
    for i, item in enumerate(custom):
        if not isinstance(item, Mapping) or "property" not in item:
            raise ctx.error(
                "each customProperties entry needs `property` and `value`", (*where, i), ContractSchemaError
            )
        out.append((str(item["property"]), item.get("value"), (*where, i, "value")))
    return out


def parse_stream_spec(
    custom: Any,
    where: Path_,
    ctx: SourceContext,
    dtypes: Mapping[str, pl.DataType],
    reserved: Sequence[str] = OTHER_KEYS,
) -> StreamSpec:
    """The :class:`StreamSpec` of one schema object from its raw ``customProperties`` at ``where``.

    ``dtypes`` maps the object's declared fields to their dtypes (the event-time field
    must be one of them, of a Datetime or Date type). ``reserved`` are further
    ``qstreams.*`` keys read elsewhere (left alone here). Errors name file:line.
    """
    found: dict[str, tuple[Any, Path_]] = {}
    for key, value, at in _entries(custom, where, ctx):
        if not key.startswith(PREFIX):
            continue
        if key not in STREAM_KEYS and key not in reserved:
            known = ", ".join((*STREAM_KEYS, *reserved))
            raise ctx.error(f"unknown custom property {key!r}; quality-streams reads {known}", at, ContractSchemaError)
        if key in found:
            raise ctx.error(f"custom property {key!r} is set twice", at, ContractSchemaError)
        found[key] = (value, at)
    event_time = None
    if EVENT_TIME in found:
        value, at = found[EVENT_TIME]
        if not isinstance(value, str) or value not in dtypes:
            names = ", ".join(sorted(dtypes)) or "none"
            raise ctx.error(
                f"{EVENT_TIME} names {value!r}, which is not a property of this schema object (properties: {names})",
                at,
                ContractSchemaError,
            )
        if not isinstance(dtypes[value], (pl.Datetime, pl.Date)):
            raise ctx.error(
                f"{EVENT_TIME} field {value!r} is {dtypes[value]}, not a timestamp; declare it with "
                "logicalType: timestamp (or date)",
                at,
                ContractSchemaError,
            )
        event_time = value

    def duration(key: str, positive: bool) -> int | None:
        if key not in found:
            return None
        value, at = found[key]
        try:
            ms = parse_duration(value)
        except DurationError as exc:
            raise ctx.error(f"{key}: {exc}", at, ContractSchemaError) from None
        if positive and ms <= 0:
            raise ctx.error(f"{key} must be longer than 0, got {value!r}", at, ContractSchemaError)
        return ms

    return StreamSpec(
        event_time=event_time,
        window_ms=duration(WINDOW, True),
        allowed_lateness_ms=duration(ALLOWED_LATENESS, False),
        unique_within_ms=duration(UNIQUE_WITHIN, True),
    )
