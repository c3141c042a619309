"""The records of the internal stream-time topic: compact, versioned, and never fatal to decode.

Three kinds of record go to the internal compacted topic, all of one stream
(contract id, schema object, source topic) to one partition of it:

* :class:`Partial`: the partial of one window from one source partition (cumulative:
  each new one covers the previous, compaction keeps the last per window and partition);
* :class:`Heartbeat`: a source partition's clock (newest event time, last activity);
* :class:`Closed`: the stream's windows ending at or before ``through_ms`` are final
  and their summaries were published (so a new owner does not publish them again);
* :class:`ContractText`: a contract version a worker of the stream runs (its YAML text), written when the
  worker starts, so that a merger running another version can judge the windows this one's partials count.

Wire format: ``b"QSW"``, a format version byte, a kind byte, a flags byte (bit 0:
the body is zlib-compressed), then the body: for a partial, a 4-byte big-endian
JSON length, the JSON, then the binary arrays the JSON points to (``[offset,
length]``); for the others, JSON. A partial's window profile (drift monitoring, see
:mod:`streams.profiles`) travels in its JSON as ``"profile"`` (``Profile.as_dict``, non-finite
numbers as text) with its own ``"profile_format"`` version; a record without one decodes to a
partial without a profile (records of workers that do not profile). The window's newest event time
travels as ``"newest_event_ms"`` (an integer) when the partial knows one; a record without it (of a
worker older than the field) decodes to a partial that knows none, so the format version is unchanged.
:func:`decode` returns an :class:`Undecodable` with the reason for anything it cannot read
(garbage, another format version, a field of the wrong type), and never raises.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from streams.profiles.profile import Profile
from streams.windows.clock import PartitionClock
from streams.windows.partial import FieldTally, RuleTally, ValueCounts, WindowKey, WindowPartial, from_counts

__all__ = [
    "FORMAT_VERSION",
    "Closed",
    "ContractText",
    "Heartbeat",
    "Partial",
    "Undecodable",
    "decode",
    "encode",
    "record_key",
    "record_kind",
]

MAGIC = b"QSW"
FORMAT_VERSION = 1
_PARTIAL, _HEARTBEAT, _CLOSED, _CONTRACT = 1, 2, 3, 4
_ZLIB = 1
_COMPRESS_ABOVE = 512
#: version of the ``profile`` entry of a partial (``Profile.as_dict``)
PROFILE_FORMAT = 1


@dataclass(frozen=True, slots=True, eq=False)
class Partial:
    """A window partial from one source partition."""

    partition: int
    partial: WindowPartial


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A source partition's clock, as seen by the worker consuming it at ``sent_ms`` (processing time)."""

    contract_id: str
    schema: str
    topic: str
    partition: int
    partitions: int  # partitions of the source topic
    clock: PartitionClock
    sent_ms: int
    counted_through: int = -1  # highest offset of the partition accounted in window partials


@dataclass(frozen=True, slots=True)
class Closed:
    """Every window of the stream ending at or before ``through_ms`` has been finalized and published."""

    contract_id: str
    schema: str
    topic: str
    through_ms: int


@dataclass(frozen=True, slots=True)
class ContractText:
    """A contract version run by a worker of the stream: its identity and the YAML text it was parsed from."""

    contract_id: str
    version: str
    sha256: str
    path: str
    text: str


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A record of the internal topic that could not be read, and why (log it and skip it)."""

    reason: str


Record = Partial | Heartbeat | Closed | ContractText


def record_key(record: Record) -> bytes:
    """The compaction key: one live record per (stream, window, partition, contract text), per (stream, partition)
    heartbeat, one ``closed`` marker per stream, and one contract text per (contract id, version, sha256). A partial's
    key names its contract's sha256: the partials of two texts of one version (a contract edited without a new
    version, during a rolling restart) are two records, neither compacted away by the other."""
    if isinstance(record, Partial):
        k, sha = record.partial.key, record.partial.contract_sha256
        parts: list[Any] = ["p", k.contract_id, k.contract_version, k.schema, k.topic, k.start_ms, record.partition]
        parts.append(sha)
    elif isinstance(record, Heartbeat):
        parts = ["h", record.contract_id, record.schema, record.topic, record.partition]
    elif isinstance(record, ContractText):
        parts = ["k", record.contract_id, record.version, record.sha256]
    else:
        parts = ["c", record.contract_id, record.schema, record.topic]
    return orjson.dumps(parts)


def record_kind(value: bytes | None) -> str:
    """What an encoded stream-time value holds, from its header alone: ``partial``, ``heartbeat``, ``closed``,
    ``contract``, ``tombstone`` (None) or ``unknown``."""
    if value is None:
        return "tombstone"
    if len(value) < len(MAGIC) + 2 or not value.startswith(MAGIC):
        return "unknown"
    kinds = {_PARTIAL: "partial", _HEARTBEAT: "heartbeat", _CLOSED: "closed", _CONTRACT: "contract"}
    return kinds.get(value[len(MAGIC) + 1], "unknown")


def _frame(kind: int, body: bytes) -> bytes:
    flags = 0
    if len(body) > _COMPRESS_ABOVE:
        body, flags = zlib.compress(body, 1), _ZLIB
    return MAGIC + bytes((FORMAT_VERSION, kind, flags)) + body


def encode(record: Record) -> bytes:
    """A record of the internal topic as bytes."""
    if isinstance(record, Heartbeat):
        data = {
            "contract_id": record.contract_id,
            "schema": record.schema,
            "topic": record.topic,
            "partition": record.partition,
            "partitions": record.partitions,
            "max_event_ms": record.clock.max_event_ms,
            "last_active_ms": record.clock.last_active_ms,
            "sent_ms": record.sent_ms,
            "counted_through": record.counted_through,
        }
        return _frame(_HEARTBEAT, orjson.dumps(data))
    if isinstance(record, ContractText):
        data = {"contract_id": record.contract_id, "version": record.version, "sha256": record.sha256}
        return _frame(_CONTRACT, orjson.dumps(data | {"path": record.path, "text": record.text}))
    if isinstance(record, Closed):
        data = {"contract_id": record.contract_id, "schema": record.schema, "topic": record.topic}
        return _frame(_CLOSED, orjson.dumps(data | {"through_ms": record.through_ms}))
    p = record.partial
    blobs: list[bytes] = []
    at = 0

    def blob(array: np.ndarray, dtype: str) -> list[int]:
        nonlocal at
        raw = np.ascontiguousarray(array, dtype=dtype).tobytes()
        blobs.append(raw)
        at += len(raw)
        return [at - len(raw), len(raw)]

    k = p.key
    data = {
        "partition": record.partition,
        "key": [k.contract_id, k.contract_version, k.schema, k.topic, k.start_ms, k.end_ms],
        "sha256": p.contract_sha256,
        "counts": list(p.counts),
        "rules": {n: [t.failures, t.batches, t.error] for n, t in p.rules.items()},
        "values": {n: [blob(v.hashes, "<u8"), blob(v.counts, "<i8"), v.nulls] for n, v in p.values.items()},
        "aggregates": {n: [list(kinds), _finite_json(list(vals))] for n, (kinds, vals) in p.aggregates.items()},
        "evidence": {n: [list(e) for e in ev] for n, ev in p.evidence.items()},
        "offsets": [[part, [list(r) for r in ranges]] for part, ranges in p.offsets.items()],
    }
    if p.unknown or p.missing:
        data["unknown"] = {n: [t.records, [list(e) for e in t.evidence]] for n, t in p.unknown.items()}
        data["missing"] = {n: [t.records, [list(e) for e in t.evidence]] for n, t in p.missing.items()}
    if p.newest_event_ms is not None:
        data["newest_event_ms"] = p.newest_event_ms
    if p.profile is not None:
        data["profile_format"] = PROFILE_FORMAT
        data["profile"] = _finite_json(p.profile.as_dict())
    head = orjson.dumps(data)
    return _frame(_PARTIAL, struct.pack(">I", len(head)) + head + b"".join(blobs))


def decode(value: bytes | None) -> Record | Undecodable:
    """The record in ``value``, or why it cannot be read. Never raises."""
    if not value or len(value) < 6 or value[:3] != MAGIC:
        return Undecodable("not a stream-time record (no QSW header)")
    version, kind, flags = value[3], value[4], value[5]
    if version != FORMAT_VERSION:
        return Undecodable(f"stream-time record format version {version} is not supported (this worker reads 1)")
    try:
        body = zlib.decompress(value[6:]) if flags & _ZLIB else value[6:]
        if kind == _HEARTBEAT:
            d = orjson.loads(body)
            clock = PartitionClock(_opt_int(d["max_event_ms"]), _opt_int(d["last_active_ms"]))
            return Heartbeat(
                _str(d["contract_id"]), _str(d["schema"]), _str(d["topic"]), _nat(d["partition"]),
                _nat(d["partitions"]), clock, _int(d["sent_ms"]), _int(d.get("counted_through", -1)),
            )  # fmt: skip
        if kind == _CLOSED:
            d = orjson.loads(body)
            return Closed(_str(d["contract_id"]), _str(d["schema"]), _str(d["topic"]), _int(d["through_ms"]))
        if kind == _CONTRACT:
            d = orjson.loads(body)
            return ContractText(*(_str(d[k]) for k in ("contract_id", "version", "sha256", "path", "text")))
        if kind == _PARTIAL:
            return _decode_partial(body)
        return Undecodable(f"unknown stream-time record kind {kind}")
    except Exception as exc:  # garbage of any shape is a reason, never a crash
        return Undecodable(f"corrupt stream-time record: {type(exc).__name__}: {exc}")


def _decode_partial(body: bytes) -> Partial:
    (size,) = struct.unpack_from(">I", body, 0)
    d = orjson.loads(body[4 : 4 + size])
    blobs = body[4 + size :]

    def array(ref: Any, dtype: str) -> np.ndarray:
        start, length = _nat(ref[0]), _nat(ref[1])
        if start + length > len(blobs) or length % 8:
            raise ValueError("array reference outside the record")
        return np.frombuffer(blobs, dtype=dtype, count=length // 8, offset=start).astype(dtype[1:])

    cid, version, schema, topic, start, end = d["key"]
    key = WindowKey(_str(cid), _str(version), _str(schema), _str(topic), _int(start), _int(end))
    if key.end_ms <= key.start_ms:
        raise ValueError("window end is not after its start")
    counts = [_nat(c) for c in d["counts"]]
    rules = {
        _str(n): RuleTally(_nat(f), _nat(b), None if e is None else _str(e)) for n, (f, b, e) in d["rules"].items()
    }
    values = {}
    for n, (h, c, nulls) in d["values"].items():
        hashes, occurrences = array(h, "<u8"), array(c, "<i8")
        if len(hashes) != len(occurrences) or (len(hashes) > 1 and not np.all(hashes[1:] > hashes[:-1])):
            raise ValueError("value counts are not sorted pairs")
        values[_str(n)] = ValueCounts(hashes.astype(np.uint64), occurrences.astype(np.int64), _nat(nulls))
    aggregates = {}
    for n, (kinds, vals) in d["aggregates"].items():
        if len(kinds) != len(vals) or any(k not in ("count", "sum", "min", "max") for k in kinds):
            raise ValueError("malformed partial aggregates")
        aggregates[_str(n)] = (tuple(kinds), tuple(_opt_num(v) for v in vals))
    evidence = {_str(n): tuple((_nat(p), _nat(o)) for p, o in ev) for n, ev in d["evidence"].items()}
    offsets = {}
    for part, ranges in d["offsets"]:
        rs = tuple((_nat(f), _nat(la)) for f, la in ranges)
        if any(f > la for f, la in rs) or any(rs[i][1] >= rs[i + 1][0] for i in range(len(rs) - 1)):
            raise ValueError("offset ranges are not sorted and disjoint")
        offsets[_nat(part)] = rs
    profile = _decode_profile(d, key, counts[1]) if d.get("profile") is not None else None
    unknown, missing = (
        {_str(n): FieldTally(_nat(r), tuple((_nat(p), _nat(o)) for p, o in ev)) for n, (r, ev) in d.get(k, {}).items()}
        for k in ("unknown", "missing")
    )
    partial = WindowPartial(
        key, _str(d["sha256"]), **from_counts(counts), rules=rules, values=values, aggregates=aggregates,
        evidence=evidence, offsets=offsets, unknown=unknown, missing=missing, profile=profile,
        newest_event_ms=_opt_int(d.get("newest_event_ms")),  # absent in records of older workers
    )  # fmt: skip
    return Partial(_nat(d["partition"]), partial)


def _finite_json(value: Any) -> Any:
    """``value`` with non-finite floats as text (``"inf"``, ``"nan"``), which ``float()`` reads back, and integers
    beyond 64 bits (orjson's range) as their digits, which :func:`_opt_num` reads back."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, int) and not -(2**63) <= value < 2**64:  # an exact SUM beyond 64 bits: as its digits
        return str(value)
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_json(v) for v in value]
    return value


def _decode_profile(d: dict[str, Any], key: WindowKey, rows: int) -> Profile:
    """The partial's window profile, checked against its key (a profile of another stream is corrupt)."""
    if d.get("profile_format") != PROFILE_FORMAT:
        raise ValueError(f"window profile format {d.get('profile_format')!r} is not supported (this worker reads 1)")
    profile = Profile.from_dict(d["profile"])
    if (profile.contract, profile.schema) != (f"{key.contract_id}@{key.contract_version}", key.schema):
        raise ValueError(f"window profile of {profile.contract}/{profile.schema} in a partial of another stream")
    if not 0 <= profile.rows <= rows:
        raise ValueError(f"window profile of {profile.rows} rows in a partial of {rows} rows")
    for f in profile.fields.values():
        if min(f.count, f.nulls) < 0 or f.count + f.nulls != profile.rows:
            raise ValueError("window profile field counts do not add up to its rows")
    return profile


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"expected text, got {type(v).__name__}")
    return v


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"expected an integer, got {type(v).__name__}")
    return v


def _nat(v: Any) -> int:
    if _int(v) < 0:
        raise ValueError(f"expected a non-negative integer, got {v}")
    return int(v)


def _opt_int(v: Any) -> int | None:
    return None if v is None else _int(v)


_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def _opt_num(v: Any) -> int | float | None:
    if v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)):
        return v  # type: ignore[no-any-return]
    if isinstance(v, str) and v in _NON_FINITE:  # written by _finite_json (JSON has no inf or NaN)
        return _NON_FINITE[v]
    if isinstance(v, str) and len(v) <= 40 and v.lstrip("-").isdigit() and v.isascii():  # an exact SUM's digits
        return int(v)
    raise TypeError(f"expected a number, got {type(v).__name__}")
