"""Mergeable window partials: everything a window's verdict needs, from any slice of its records.

A :class:`WindowPartial` summarises some records of one window of one (contract
version, schema object, source topic): the counts, each rule's failures, exact
per-value counts for ``duplicateValues`` rules, partial aggregates of mergeable SQL
rules, the offset ranges it covers per source partition and the first offending
offsets per rule, the records with undeclared or missing fields (schema drift), and
(when the contract names a ``qstreams.reference``) the mergeable
:class:`~streams.profiles.profile.Profile` of its decoded rows. :func:`merge` adds two
partials of **disjoint** records; it is associative and commutative, so partials from
any partitions, batches and workers combine into the numbers of the window's records
taken as one frame.

Replays are recognised by partition and offset: :func:`absorb` ignores a partial
whose records are already covered (a replay after a crash) and refuses one that
overlaps partly, instead of counting records twice.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from streams.errors import ProfileError
from streams.profiles.profile import Profile
from streams.windows.sql import Value, merge_values

__all__ = [
    "EVIDENCE",
    "MAX_UNKNOWN_FIELDS",
    "FieldTally",
    "Ranges",
    "RuleTally",
    "ValueCounts",
    "WindowKey",
    "WindowPartial",
    "absorb",
    "covers",
    "merge",
    "merge_all",
    "newest",
    "overlaps",
]

log = logging.getLogger(__name__)

#: First offending (partition, offset) pairs kept per rule.
EVIDENCE = 5

#: Undeclared field names kept per window (the most frequent, then by name): record keys are data.
MAX_UNKNOWN_FIELDS = 64

Ranges = tuple[tuple[int, int], ...]  # sorted, disjoint, inclusive offset ranges


@dataclass(frozen=True, slots=True)
class FieldTally:
    """Records of a window that carry an undeclared field (or lack a declared one), and the first of them."""

    records: int
    evidence: tuple[tuple[int, int], ...] = ()  # first (partition, offset)

    def __add__(self, other: FieldTally) -> FieldTally:
        return FieldTally(self.records + other.records, _add_evidence(self.evidence, other.evidence))


@dataclass(frozen=True, slots=True, order=True)
class WindowKey:
    """One window of one source topic judged by one contract version's schema object."""

    contract_id: str
    contract_version: str
    schema: str
    topic: str
    start_ms: int
    end_ms: int

    @property
    def group(self) -> tuple[str, str, str]:
        """``(contract id, schema, topic)``: the key of the internal topic's records for this stream."""
        return (self.contract_id, self.schema, self.topic)


@dataclass(frozen=True, slots=True)
class RuleTally:
    """A rule's counts in a partial.

    ``failures``: failing records (row rules, stream uniqueness) or failing batch
    slices (non-mergeable SQL); ``batches``: batch slices judged (non-mergeable SQL
    only); ``error``: why the rule could not run on some slice (the smallest message,
    so merging is order-free).
    """

    failures: int = 0
    batches: int = 0
    error: str | None = None

    def __add__(self, other: RuleTally) -> RuleTally:
        errors = [e for e in (self.error, other.error) if e is not None]
        return RuleTally(self.failures + other.failures, self.batches + other.batches, min(errors, default=None))


@dataclass(frozen=True, slots=True, eq=False)
class ValueCounts:
    """Exact occurrences per value (by stable 64-bit hash, sorted) plus the nulls: ``duplicateValues``.

    As in the engine, every occurrence of a value seen more than once fails; nulls (or a
    composite key with a null part) are not duplicates, only counted.
    """

    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    nulls: int = 0

    @classmethod
    def of(cls, hashes: np.ndarray, nulls: np.ndarray) -> ValueCounts:
        present = np.asarray(hashes, dtype=np.uint64)[~np.asarray(nulls, dtype=bool)]
        values, counts = np.unique(present, return_counts=True)
        return cls(values, counts.astype(np.int64), int(np.count_nonzero(nulls)))

    @property
    def duplicated(self) -> int:
        """Records whose value occurs more than once (nulls are not duplicates: ODCS leaves them to ``required``)."""
        return int(self.counts[self.counts > 1].sum())

    @property
    def extra(self) -> int:
        """ODCS ``duplicateValues``: records of repeated values minus their distinct values."""
        repeated = self.counts[self.counts > 1]
        return int(repeated.sum()) - len(repeated)

    def __add__(self, other: ValueCounts) -> ValueCounts:
        if not len(other.hashes):
            return ValueCounts(self.hashes, self.counts, self.nulls + other.nulls)
        if not len(self.hashes):
            return ValueCounts(other.hashes, other.counts, self.nulls + other.nulls)
        values, inverse = np.unique(np.concatenate([self.hashes, other.hashes]), return_inverse=True)
        counts = np.zeros(len(values), dtype=np.int64)
        np.add.at(counts, inverse, np.concatenate([self.counts, other.counts]))
        return ValueCounts(values, counts, self.nulls + other.nulls)

    def same(self, other: ValueCounts) -> bool:
        return (
            self.nulls == other.nulls
            and np.array_equal(self.hashes, other.hashes)
            and np.array_equal(self.counts, other.counts)
        )


def _union(a: Ranges, b: Ranges) -> Ranges:
    out: list[list[int]] = []
    for first, last in sorted([*a, *b]):
        if out and first <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], last)
        else:
            out.append([first, last])
    return tuple((f, la) for f, la in out)


def _intersects(a: Ranges, b: Ranges) -> bool:
    return any(f1 <= l2 and f2 <= l1 for f1, l1 in a for f2, l2 in b)


def _inside(inner: Ranges, outer: Ranges) -> bool:
    return all(any(f2 <= f1 and l1 <= l2 for f2, l2 in outer) for f1, l1 in inner)


@dataclass(frozen=True, slots=True, eq=False)
class WindowPartial:
    """Some records of one window (see the module docstring). Counts exclude late records
    except ``late`` itself, which counts the records that arrived after their own window
    closed on their partition while this window was being filled.

    ``records`` = ``rows`` + ``dead_lettered``: ``rows`` were decoded and validated;
    ``valid`` and ``quarantined`` are routing outcomes of those rows.
    """

    key: WindowKey
    contract_sha256: str
    records: int = 0
    rows: int = 0
    valid: int = 0
    quarantined: int = 0
    dead_lettered: int = 0
    late: int = 0
    skewed: int = 0
    rules: Mapping[str, RuleTally] = field(default_factory=dict)
    values: Mapping[str, ValueCounts] = field(default_factory=dict)
    aggregates: Mapping[str, tuple[tuple[str, ...], tuple[Value, ...]]] = field(default_factory=dict)
    evidence: Mapping[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    offsets: Mapping[int, Ranges] = field(default_factory=dict)
    unknown: Mapping[str, FieldTally] = field(default_factory=dict)  # undeclared field -> records carrying it
    missing: Mapping[str, FieldTally] = field(default_factory=dict)  # declared field -> records lacking it
    #: profile of the ``rows`` (drift monitoring); None when the contract names no reference or no row was decoded
    profile: Profile | None = None
    #: newest event time (epoch ms) of the window's own records that carry one (not late, not skewed, not placed
    #: by a Kafka timestamp for want of the event-time field): the window's freshness. None: no such record (or a
    #: partial of a worker that did not keep it). Merged by ``max``.
    newest_event_ms: int | None = None

    @property
    def counts(self) -> tuple[int, ...]:
        return (self.records, self.rows, self.valid, self.quarantined, self.dead_lettered, self.late, self.skewed)

    def same(self, other: WindowPartial) -> bool:
        """Equal content (numpy arrays compared by value)."""
        return (
            self.key == other.key
            and self.contract_sha256 == other.contract_sha256
            and self.counts == other.counts
            and dict(self.rules) == dict(other.rules)
            and self.values.keys() == other.values.keys()
            and all(v.same(other.values[k]) for k, v in self.values.items())
            and dict(self.aggregates) == dict(other.aggregates)
            and dict(self.evidence) == dict(other.evidence)
            and dict(self.offsets) == dict(other.offsets)
            and dict(self.unknown) == dict(other.unknown)
            and dict(self.missing) == dict(other.missing)
            and self.profile == other.profile
            and self.newest_event_ms == other.newest_event_ms
        )


COUNT_FIELDS = ("records", "rows", "valid", "quarantined", "dead_lettered", "late", "skewed")


def from_counts(counts: list[int]) -> dict[str, int]:
    """Keyword arguments of :class:`WindowPartial` from :attr:`WindowPartial.counts`."""
    if len(counts) != len(COUNT_FIELDS):
        raise ValueError(f"expected {len(COUNT_FIELDS)} counts, got {len(counts)}")
    return dict(zip(COUNT_FIELDS, counts, strict=True))


def _merge_maps(a: Mapping[str, object], b: Mapping[str, object], add: object) -> dict[str, object]:
    out = dict(a)
    for k, v in b.items():
        out[k] = add(out[k], v) if k in out else v  # type: ignore[operator]
    return dict(sorted(out.items()))


def _add_aggregates(
    x: tuple[tuple[str, ...], tuple[Value, ...]], y: tuple[tuple[str, ...], tuple[Value, ...]]
) -> tuple[tuple[str, ...], tuple[Value, ...]]:
    if x[0] != y[0]:
        raise ValueError("partial aggregates of one rule have different shapes (two versions of the rule?)")
    return x[0], merge_values(x[0], x[1], y[1])


def _add_evidence(x: tuple[tuple[int, int], ...], y: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    return tuple(heapq.nsmallest(EVIDENCE, set(x) | set(y)))


def overlaps(a: WindowPartial, b: WindowPartial) -> bool:
    """Some (partition, offset) is covered by both."""
    return any(p in b.offsets and _intersects(r, b.offsets[p]) for p, r in a.offsets.items())


def covers(a: WindowPartial, b: WindowPartial) -> bool:
    """Every (partition, offset) of ``b`` is covered by ``a`` (``b`` adds nothing new)."""
    return all(p in a.offsets and _inside(r, a.offsets[p]) for p, r in b.offsets.items())


def merge(a: WindowPartial, b: WindowPartial) -> WindowPartial:
    """The partial of the records of ``a`` and ``b`` (disjoint records of the same window and contract)."""
    if a.key != b.key or a.contract_sha256 != b.contract_sha256:
        raise ValueError(f"cannot merge partials of different windows or contract versions: {a.key} and {b.key}")
    total = [x + y for x, y in zip(a.counts, b.counts, strict=True)]
    return WindowPartial(
        a.key,
        a.contract_sha256,
        **from_counts(total),
        rules=_merge_maps(a.rules, b.rules, RuleTally.__add__),  # type: ignore[arg-type]
        values=_merge_maps(a.values, b.values, ValueCounts.__add__),  # type: ignore[arg-type]
        aggregates=_merge_maps(a.aggregates, b.aggregates, _add_aggregates),  # type: ignore[arg-type]
        evidence=_merge_maps(a.evidence, b.evidence, _add_evidence),  # type: ignore[arg-type]
        offsets=dict(sorted(_merge_offsets(a.offsets, b.offsets).items())),
        unknown=cap_unknown(_merge_maps(a.unknown, b.unknown, FieldTally.__add__)),  # type: ignore[arg-type]
        missing=_merge_maps(a.missing, b.missing, FieldTally.__add__),  # type: ignore[arg-type]
        profile=_merge_profiles(a.profile, b.profile),
        newest_event_ms=newest(a.newest_event_ms, b.newest_event_ms),
    )


def newest(a: int | None, b: int | None) -> int | None:
    """The later of two newest event times (None: the partial knows none)."""
    return b if a is None else a if b is None else max(a, b)


def cap_unknown(tallies: Mapping[str, FieldTally]) -> dict[str, FieldTally]:
    """At most :data:`MAX_UNKNOWN_FIELDS` undeclared fields: the most frequent (exact below the cap)."""
    if len(tallies) <= MAX_UNKNOWN_FIELDS:
        return dict(tallies)
    kept = sorted(tallies.items(), key=lambda kv: (-kv[1].records, kv[0]))[:MAX_UNKNOWN_FIELDS]
    return dict(sorted(kept))


def _merge_profiles(a: Profile | None, b: Profile | None) -> Profile | None:
    """The profile of the union (a partial without rows carries none).

    Profiles of one contract version merge unless the reference file was replaced (other bins) while
    workers ran: then the larger one is kept (order-free) and the window's drift is judged on fewer rows
    than it holds, which the drift event shows (its ``records`` is the profiled rows). Never raises.
    """
    if a is None or b is None:
        return a if b is None else b
    try:
        return a.merge(b)
    except ProfileError:
        log.warning("window profiles of %s with other bins (%s, %s): keeping the larger", a.contract, a.spec_id,
                    b.spec_id)  # fmt: skip
        return max(a, b, key=lambda p: (p.rows, p.spec_id))


def _merge_offsets(a: Mapping[int, Ranges], b: Mapping[int, Ranges]) -> dict[int, Ranges]:
    out = dict(a)
    for p, r in b.items():
        out[p] = _union(out[p], r) if p in out else r
    return out


def merge_all(partials: Iterable[WindowPartial]) -> WindowPartial | None:
    """All partials merged (None for none)."""
    out: WindowPartial | None = None
    for p in partials:
        out = p if out is None else merge(out, p)
    return out


def absorb(acc: WindowPartial | None, part: WindowPartial) -> tuple[WindowPartial, str | None]:
    """Add ``part`` to ``acc`` unless its records were counted already.

    Returns the new accumulation and, when ``part`` was not added, why: ``"replay"``
    (every record already covered) or ``"overlap"`` (some but not all: the caller
    sent records twice; nothing is added so nothing is counted twice).
    """
    if acc is None:
        return part, None
    if part.offsets and covers(acc, part):
        return acc, "replay"
    if overlaps(acc, part):
        return acc, "overlap"
    return merge(acc, part), None


def empty(key: WindowKey, sha256: str) -> WindowPartial:
    """The partial of no records."""
    return WindowPartial(key, sha256)


def with_offsets(partial: WindowPartial, offsets: Mapping[int, Ranges]) -> WindowPartial:
    return replace(partial, offsets=dict(sorted(offsets.items())))
