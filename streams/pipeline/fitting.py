"""Outputs that fit their topics: a copy that would be refused becomes a reference record; events shrink.

A broker refuses a record batch larger than the topic's ``max.message.bytes``; the worker used to
retry such a batch forever. Before a batch's outputs are sent, :func:`fit` checks each against its
topic's limit (read from the broker by the transport, cached):

* a validated, quarantined or dead-lettered copy that would not fit goes to ``<source>.dlq`` as a
  **reference record** instead of the bytes: a small JSON value ``{"reference": true, "topic",
  "partition", "offset", "size", "limit", "output_topic", "reason": "too_large_for_output"}``,
  the source key when it is small, our ``{p}*`` headers of the copy (the verdict: rules, class) with
  ``{p}errors.class`` ``output.too_large_for_output`` and the former class in ``{p}errors.original_class``;
* an event larger than its limit is shrunk (:func:`shrink_event`): long strings and keys cut with a
  ``…[truncated N bytes]`` marker, long lists and objects cut, until it fits; one that cannot is dropped (logged):
  an event describes a batch, losing it must not block the records.

:func:`references` turns a whole batch into reference records: what a batch whose outputs the broker
kept refusing ends as, after the configured retries (never an endless loop).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from operator import attrgetter
from typing import Any

import orjson
import pyarrow as pa

from streams.formats.arrow import ndjson_lines, read_ipc
from streams.formats.names import cut_text
from streams.pipeline.headers import MAX_VALUE_BYTES, HeaderNames, bounded, parse_positions
from streams.pipeline.records import BatchResult, Headers, Message, OutRecord
from streams.settings import Settings

__all__ = [
    "BATCH_OVERHEAD",
    "SAMPLE_BOUND",
    "TOO_LARGE",
    "fit",
    "record_size",
    "reference_record",
    "references",
    "shrink_event",
]

log = logging.getLogger(__name__)

#: ``{p}errors.class`` of a reference record, after ``output.``
TOO_LARGE = "too_large_for_output"
#: bytes of a record batch's own header (v2), beside its records
BATCH_OVERHEAD = 61
_KEY_KEPT = 1024
#: events larger than this have their long strings cut even when they fit their topic
SAMPLE_BOUND = 65_536
_MARKER = "…[truncated {n} bytes]"
_DROPPED = "…[{n} more entries truncated]"  # the key ending a cut object; its value is that number
_VALUE, _KEY, _HEADERS, _TOPIC = attrgetter("value"), attrgetter("key"), attrgetter("headers"), attrgetter("topic")


def record_size(r: OutRecord) -> int:
    """An upper estimate of the bytes ``r`` takes in a record batch (varints counted at their widest; a header's
    value may be null, as Kafka allows and aiokafka reads it)."""
    size = 21 + len(r.value or b"") + len(r.key or b"")
    for k, v in r.headers:
        size += 10 + len(k) + len(v or b"")
    return size


def fits(r: OutRecord, limit: int) -> bool:
    return record_size(r) + BATCH_OVERHEAD <= limit


def _all_fit(records: Sequence[OutRecord], limit_of: Mapping[str, int]) -> bool:
    """``all(fits(r, limit_of[r.topic]) for r in records)``, without sizing every record in Python.

    First a bound: the largest value, the largest key and the largest distinct headers tuple (the outputs of a
    batch mostly share one: the source's, usually empty, plus ours) against the smallest limit, at C speed. Only
    when that bound does not fit is each record sized (sizing each cost about 1 µs per record on the hot path).
    """
    if not records:
        return True
    tuples = list(map(_HEADERS, records))
    headers = dict(zip(map(id, tuples), tuples, strict=True)).values()  # the distinct headers tuples (by identity)
    bound = (21 + BATCH_OVERHEAD + max(map(len, filter(None, map(_VALUE, records))), default=0)
             + max(map(len, filter(None, map(_KEY, records))), default=0)
             + max(sum(10 + len(k) + len(v or b"") for k, v in h) for h in headers))  # fmt: skip
    if bound <= min(limit_of[t] for t in set(map(_TOPIC, records))):
        return True
    return all(fits(r, limit_of[r.topic]) for r in records)


def reference_record(
    r: OutRecord, *, source: Message | None, source_topic: str, settings: Settings, names: HeaderNames,
    limit: int, reason: str = TOO_LARGE, text: str | None = None,
) -> OutRecord:  # fmt: skip
    """A small record in ``<source>.dlq`` standing for ``r`` (which its topic would refuse)."""
    ours = {k: v for k, v in r.headers if k.startswith(names.prefix)}
    index = ours.get(names.records_index)
    if index is not None and len(index) > MAX_VALUE_BYTES:  # the one header we never cut: a reference must fit
        ours[names.records_index] = index[: MAX_VALUE_BYTES - 3].rsplit(b",", 1)[0] + "…".encode()
    partition = source.partition if source is not None else _int(ours.get(names.errors_partition))
    offset = source.offset if source is not None else _int(ours.get(names.errors_offset))
    size = record_size(r)
    body = {
        "reference": True, "topic": source_topic, "partition": partition, "offset": offset, "size": size,
        "limit": limit, "output_topic": r.topic, "reason": reason,
    }  # fmt: skip
    sentence = text or (
        f"The copy of this record for {r.topic} takes about {size} bytes, more than the {limit} the topic accepts; "
        f"the record stays in {source_topic} at the partition and offset given."
    )
    former = ours.pop(names.errors_class, None)
    ours |= {
        names.errors_topic: bounded(source_topic),
        names.errors_class: bounded(f"output.{reason}"),
        names.errors_stage: b"output",
        names.errors_message: bounded(sentence),
    }
    if partition is not None:
        ours[names.errors_partition] = str(partition).encode("ascii")
    if offset is not None:
        ours[names.errors_offset] = str(offset).encode("ascii")
    if former is not None:
        ours[f"{names.prefix}errors.original_class"] = former
    key = r.key if r.key is None or len(r.key) <= _KEY_KEPT else None
    headers: Headers = tuple(ours.items())
    return OutRecord(settings.output_topic(source_topic, "dlq"), orjson.dumps(body), key, headers, r.timestamp_ms)


def _int(value: bytes | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def fit(
    result: BatchResult, messages: Sequence[Message], limit_of: Mapping[str, int], *, settings: Settings,
) -> BatchResult:  # fmt: skip
    """``result`` with every output that would exceed its topic's limit replaced (see the module docstring)."""
    if _all_fit(result.outputs(), limit_of):
        return result
    names = HeaderNames(settings.header_prefix)
    source_topic = messages[0].topic
    validated_topic = settings.output_topic(source_topic, "validated")
    by_value: dict[
        int, list[int]
    ] = {}  # a consumed value object -> the messages holding it (one, but for interned bytes)
    for k, m in enumerate(messages):
        if m.value is not None:
            by_value.setdefault(id(m.value), []).append(k)
    moved: list[OutRecord] = []
    taken: set[int] = set()  # messages a validated copy was traced to

    def keep(records: list[OutRecord]) -> list[OutRecord]:
        kept = []
        for r in records:
            limit = limit_of[r.topic]
            if fits(r, limit):
                kept.append(r)
                continue
            # a quarantined or dead-lettered copy names its source in our headers (appended last: they win over any
            # the source carried); a validated copy is the consumed value itself, or records of it re-encoded
            source = None
            if r.topic == validated_topic:
                k = next((k for k in by_value.get(id(r.value), ()) if k not in taken), None)
                if k is not None:
                    taken.add(k)
                    source = messages[k]
                else:
                    source = _traced(r, messages, names, taken)
            ref = reference_record(r, source=source, source_topic=source_topic,
                                   settings=settings, names=names, limit=limit)  # fmt: skip
            log.warning("an output for %s of about %d bytes exceeds the topic's %d: a reference goes to %s",
                        r.topic, record_size(r), limit, ref.topic)  # fmt: skip
            moved.append(ref)
        return kept

    validated, quarantined, dead = keep(result.validated), keep(result.quarantined), keep(result.dead_lettered)
    events = [e for e in (shrink_event(e, limit_of[e.topic]) for e in result.events) if e is not None]
    return replace(result, validated=validated, quarantined=quarantined, dead_lettered=[*dead, *moved], events=events)


def _traced(r: OutRecord, messages: Sequence[Message], names: HeaderNames, taken: set[int]) -> Message | None:
    """The source message of ``r``, the re-encoded records ``{p}records.index`` of an NDJSON or Arrow message (a
    validated copy carries no source position): same key, timestamp and leading headers, and those records of it
    encoded are ``r``'s value (the first such message not already traced, when several are alike)."""
    index = dict(r.headers).get(names.records_index)
    if index is None:
        return None
    try:
        positions = parse_positions(index)
    except ValueError:
        return None
    for k, m in enumerate(messages):
        if (
            k not in taken and m.timestamp_ms == r.timestamp_ms and m.key == r.key
            and r.headers[: len(m.headers)] == m.headers and _encodes(m.value, positions, r.value)
        ):  # fmt: skip
            taken.add(k)
            return m
    return None


def _encodes(value: bytes | None, positions: list[int], copy: bytes | None) -> bool:
    """``copy`` holds records ``positions`` of the multi-record message ``value`` (NDJSON lines or Arrow rows)."""
    if value is None or copy is None:
        return False
    lines = ndjson_lines(value)
    if all(p < len(lines) for p in positions) and b"\n".join(lines[p] for p in positions) + b"\n" == copy:
        return True
    try:
        rows = read_ipc(value).take(pa.array(positions, type=pa.int64()))
        return bool(rows.equals(read_ipc(copy)))
    except (pa.ArrowException, IndexError, ValueError):
        return False


def references(
    messages: Sequence[Message], *, settings: Settings, reason: str, text: str, extra: Headers = (),
) -> BatchResult:  # fmt: skip
    """Every message of a batch as a reference record in ``<topic>.dlq`` (no value bytes): the last resort."""
    names = HeaderNames(settings.header_prefix)
    out = []
    for m in messages:
        stub = OutRecord(m.topic, m.value, m.key, extra, m.timestamp_ms)
        out.append(reference_record(stub, source=m, source_topic=m.topic, settings=settings, names=names,
                                    limit=0, reason=reason, text=text))  # fmt: skip
    last = {m.partition: m.offset for m in messages}
    return BatchResult(dead_lettered=out, counts={"dead_lettered": len(out)}, last_offsets=last)


# -- events ------------------------------------------------------------------------------------


def shrink_event(e: OutRecord, limit: int) -> OutRecord | None:
    """``e`` cut to fit ``limit`` (strings, then lists, shorter and shorter); None when it cannot fit.

    An event over ``SAMPLE_BOUND`` bytes has its strings cut to 1024 characters even when it fits: samples of
    huge values say what they were without carrying them.
    """
    if fits(e, limit) and len(e.value or b"") <= SAMPLE_BOUND:
        return e
    try:
        data = orjson.loads(e.value or b"")
    except orjson.JSONDecodeError:
        data = None
    if data is not None:
        for chars, items in ((1024, 1000), (256, 100), (64, 20), (16, 5), (16, 1), (16, 0)):
            value = orjson.dumps(_cut(data, chars, items))
            candidate = OutRecord(e.topic, value, e.key, e.headers, e.timestamp_ms, e.partition)
            if fits(candidate, limit):
                log.info("an event for %s of %d bytes was cut to %d to fit the topic's limit of %d",
                            e.topic, len(e.value or b""), len(value), limit)  # fmt: skip
                return candidate
    log.error("an event for %s of %d bytes cannot be cut below the topic's limit of %d: dropped",
              e.topic, len(e.value or b""), limit)  # fmt: skip
    return None


def _cut(x: Any, chars: int, items: int, depth: int = 0) -> Any:
    """``x`` with strings (values and keys) over ``chars`` characters and lists and objects over ``items`` items cut
    (strings with a marker, objects with a last key saying how many entries it lost).

    Events are built by quality-streams and shallow; below 100 levels a value is replaced by a marker.
    """
    if type(x) is str:
        return cut_text(x, chars)
    if depth > 100:
        return _MARKER.format(n=len(orjson.dumps(x)))
    if type(x) is dict:  # keys too (a record's unknown field names are keys of an event): long ones cut, many dropped
        out: dict[str, Any] = {}
        for k, v in itertools.islice(x.items(), items):
            key = _cut(k, chars, items) if type(k) is str else k
            out[f"{key}#{len(out)}" if key in out else key] = _cut(v, chars, items, depth + 1)
        if len(x) > items:
            out[_DROPPED.format(n=len(x) - items)] = len(x) - items
        return out
    if type(x) is list:  # no marker item: a list of objects stays one (the strings carry the markers)
        return [_cut(v, chars, items, depth + 1) for v in x[:items]]
    return x
