"""Stream uniqueness of one field on one source partition: bounded, restart-safe state.

On the stream, ``unique`` / ``primaryKey`` mean: a record fails ``field_uniqueness``
when a record with the same non-null value was **accepted** earlier within the
uniqueness horizon. The first accepted record claims the value; within a batch,
offset order decides; a record rejected for any reason claims nothing; null never
fails and never claims.

**State.** Each claim is a stable 64-bit hash of the value (:mod:`.hashing`), the
offset of the claiming record and its time bucket (the claimer's event time in
1/24 of the horizon): 24 bytes per key, plus a radix directory of about half a
byte per key. Claims live in a few sorted runs of geometrically decreasing size
(a log-structured merge: each claim is re-sorted O(log n) times, in linear-time
merges); a lookup is a vectorised search per run, narrowed by the directory to a
couple of cache misses. Claims expire by bucket: a claim lives between
``horizon`` and ``horizon + bucket`` after its event time.

**Replays.** A record fails only against a claim made at a *lower* offset. After a
crash, records replayed from the last committed offset find their own claims
(same offset) and pass again, so checkpointing the state before committing offsets
never turns a replay into a false duplicate.

**False positives** only from hash collisions: with ``n`` live keys a lookup
matches a different value with probability ``n / 2^64`` (5.4e-13 at 10 million keys);
integer keys never collide (the integer hash is a bijection).

**Checkpoints.** :meth:`UniqueState.take_changes` returns what changed since the last
call: new claims per bucket (each a changelog record with key ``<bucket>/<seq>``) and
the buckets that expired (tombstones for every ``<bucket>/<seq>`` they had), suited
to a compacted changelog topic; :meth:`UniqueState.restore` rebuilds the state
from those records.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

__all__ = ["BYTES_PER_KEY", "Chunk", "UniqueChanges", "UniqueState", "decode_chunk", "encode_chunk"]

#: Memory of one live claim: a uint64 hash, an int64 offset and an int64 time bucket (plus ~0.5 B of directory).
#: The bucket is an epoch number of ``bucket_ms`` periods: with a horizon under ~20 s, today's exceed an int32.
BYTES_PER_KEY = 24
BUCKETS_PER_HORIZON = 24
NO_CLAIM = np.iinfo(np.int64).max
_MAGIC = b"QSU1"
_HEADER = struct.Struct(">4sqI")  # magic, bucket, count


@dataclass(frozen=True, slots=True, eq=False)
class Chunk:
    """Claims of one bucket, as one changelog record: ``key`` ``<bucket>/<seq>``."""

    bucket: int
    seq: int
    hashes: np.ndarray  # uint64
    offsets: np.ndarray  # int64

    @property
    def key(self) -> str:
        return f"{self.bucket}/{self.seq}"


@dataclass(frozen=True, slots=True, eq=False)
class UniqueChanges:
    """What to write to the changelog: new claim chunks and tombstone keys of expired buckets."""

    chunks: tuple[Chunk, ...]
    tombstones: tuple[str, ...]


def encode_chunk(chunk: Chunk) -> bytes:
    """A chunk as bytes: header, hashes (little-endian uint64), offsets (little-endian int64)."""
    n = len(chunk.hashes)
    return (
        _HEADER.pack(_MAGIC, chunk.bucket, n)
        + chunk.hashes.astype("<u8").tobytes()
        + chunk.offsets.astype("<i8").tobytes()
    )


def decode_chunk(key: str, value: bytes) -> Chunk | str:
    """The chunk stored under ``key``, or why it cannot be read (never raises)."""
    try:
        bucket_text, seq_text = key.rsplit("/", 1)
        bucket, seq = int(bucket_text.rsplit("/", 1)[-1]), int(seq_text)
        magic, head_bucket, n = _HEADER.unpack_from(value, 0)
    except (ValueError, struct.error, TypeError):
        return f"not a uniqueness chunk (key {key!r}, {len(value) if value else 0} bytes)"
    if magic != _MAGIC:
        return f"unknown uniqueness chunk format {magic!r}"
    if head_bucket != bucket or len(value) != _HEADER.size + 16 * n:
        return f"corrupt uniqueness chunk {key!r}: header does not match key or length"
    body = value[_HEADER.size :]
    hashes = np.frombuffer(body, dtype="<u8", count=n).astype(np.uint64)
    offsets = np.frombuffer(body, dtype="<i8", count=n, offset=8 * n).astype(np.int64)
    return Chunk(bucket, seq, hashes, offsets)


#: up to this many hashes, a lookup is one ``np.searchsorted`` (the radix directory pays off on larger batches)
_FEW = 256


class _Run:
    """Claims sorted by hash, with a radix directory over the hash's top bits.

    Hashes are uniform, so the directory (one entry per ~16 claims) narrows each lookup
    to a few neighbouring claims: about two cache misses instead of a binary search's
    twenty over a large array.
    """

    __slots__ = ("buckets", "directory", "hashes", "iterations", "offsets", "shift")

    def __init__(self, hashes: np.ndarray, offsets: np.ndarray, buckets: np.ndarray, ordered: bool = False) -> None:
        if not ordered:
            order = np.argsort(hashes, kind="stable")  # sorted runs: timsort merges them in linear time
            hashes, offsets, buckets = hashes[order], offsets[order], buckets[order]
        self.hashes, self.offsets, self.buckets = hashes, offsets, buckets
        n = len(hashes)
        bits = max(0, int(np.log2(max(n, 1) / 16))) if n else 0
        self.shift = np.uint64(64 - bits) if bits else np.uint64(0)
        top = (hashes >> self.shift).astype(np.int64) if bits else np.zeros(n, dtype=np.int64)
        self.directory = np.concatenate([[0], np.cumsum(np.bincount(top, minlength=1 << bits))]).astype(np.int64)
        gap = int(np.diff(self.directory).max()) if n else 0
        self.iterations = max(1, int(np.ceil(np.log2(gap + 1))) + 1)

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def nbytes(self) -> int:
        return self.hashes.nbytes + self.offsets.nbytes + self.buckets.nbytes + self.directory.nbytes

    def find(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(found, position)`` of each hash."""
        n = len(self.hashes)
        if len(h) <= _FEW:  # a few lookups (a slow feed's batch): one binary search in C beats the vectorised one's
            pos = np.minimum(np.searchsorted(self.hashes, h), n - 1)  # numpy calls, the same lower bound
            return self.hashes[pos] == h, pos
        top = (h >> self.shift).astype(np.int64) if self.shift else np.zeros(len(h), dtype=np.int64)
        lo, hi = self.directory[top], self.directory[top + 1]
        for _ in range(self.iterations):  # vectorised lower bound within [lo, hi)
            mid = (lo + hi) >> 1
            less = self.hashes[np.minimum(mid, n - 1)] < h
            active = lo < hi
            lo = np.where(active & less, mid + 1, lo)
            hi = np.where(active & ~less, mid, hi)
        pos = np.minimum(lo, n - 1)
        return (lo < n) & (self.hashes[pos] == h), pos

    def merged(self, other: _Run) -> _Run:
        return _Run(
            np.concatenate([self.hashes, other.hashes]),
            np.concatenate([self.offsets, other.offsets]),
            np.concatenate([self.buckets, other.buckets]),
        )

    def without(self, cutoff: int) -> _Run | None:
        """This run without the claims of buckets ``<= cutoff`` (None if empty)."""
        keep = self.buckets > cutoff
        if keep.all():
            return self
        if not keep.any():
            return None
        return _Run(self.hashes[keep], self.offsets[keep], self.buckets[keep], ordered=True)


class UniqueState:
    """Claims of one unique field on one source partition (see the module docstring)."""

    def __init__(self, horizon_ms: int, bucket_ms: int | None = None) -> None:
        if horizon_ms <= 0:
            raise ValueError(f"the uniqueness horizon must be longer than 0 ms, got {horizon_ms}")
        self.horizon_ms = int(horizon_ms)
        self.bucket_ms = int(bucket_ms or max(1, self.horizon_ms // BUCKETS_PER_HORIZON))
        self._runs: list[_Run] = []  # sizes decreasing geometrically (a log-structured merge)
        self._chunks: dict[int, int] = {}  # bucket -> changelog records written for it (next seq)
        self._newest = -(2**62)  # newest claimer event time
        self._pending: list[Chunk] = []
        self._tombstones: list[str] = []

    # --- size
    def __len__(self) -> int:
        return sum(len(r) for r in self._runs)

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self._runs)

    @property
    def buckets(self) -> int:
        """Time buckets holding live claims."""
        return len(self._chunks)

    # --- lookups
    def first_claims(self, hashes: np.ndarray) -> np.ndarray:
        """Per hash, the lowest offset that claimed it (``NO_CLAIM`` when none did)."""
        h = np.asarray(hashes, dtype=np.uint64)
        first = np.full(len(h), NO_CLAIM, dtype=np.int64)
        for run in self._runs:
            if len(run):
                hit, pos = run.find(h)
                first = np.where(hit, np.minimum(first, run.offsets[pos]), first)
        return first

    def claimed_before(self, hashes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Per row: some claim of the same hash was made at a lower offset."""
        return self.first_claims(hashes) < np.asarray(offsets, dtype=np.int64)

    def claimed(self, hashes: np.ndarray) -> np.ndarray:
        """Per row: the hash has a live claim (whatever its offset)."""
        return self.first_claims(hashes) != NO_CLAIM

    def judge(
        self,
        hashes: np.ndarray,
        nulls: np.ndarray,
        offsets: np.ndarray,
        eligible: np.ndarray,
        seen: np.ndarray | None = None,
    ) -> np.ndarray:
        """Which records of one batch (offset order) fail uniqueness; nothing is claimed here.

        ``eligible``: the record passes every other gating rule (it is accepted unless
        it is a duplicate). A record fails when its value was claimed at a lower
        offset, or an earlier eligible, non-failing record of the batch has its value.
        ``seen`` (optional, bool, one per row) is filled with "the value has a live
        claim": pass it on to :meth:`claim` to spare it a second lookup.
        """
        n = len(hashes)
        h = np.asarray(hashes, dtype=np.uint64)
        present = ~np.asarray(nulls, dtype=bool)
        off = np.asarray(offsets, dtype=np.int64)
        fails = np.zeros(n, dtype=bool)
        if not n:
            return fails
        first = self.first_claims(h[present])
        fails[present] = first < off[present]
        if seen is not None:
            seen[:] = False
            seen[present] = first != NO_CLAIM
        idx = np.flatnonzero(present)
        order = idx[np.lexsort((off[idx], h[idx]))]  # by value, then offset
        hs = h[order]
        candidate = (np.asarray(eligible, dtype=bool) & ~fails)[order].astype(np.int64)
        group_start = np.r_[True, hs[1:] != hs[:-1]] if len(hs) else np.zeros(0, dtype=bool)
        cum = np.cumsum(candidate)
        base = np.maximum.accumulate(np.where(group_start, cum - candidate, 0))
        earlier = cum - candidate - base  # accepted candidates of the same value before this row
        fails[order[earlier > 0]] = True
        return fails

    # --- claims
    def claim(
        self,
        hashes: np.ndarray,
        nulls: np.ndarray,
        offsets: np.ndarray,
        event_ms: np.ndarray,
        seen: np.ndarray | None = None,
    ) -> int:
        """Record the claims of accepted records (pass only accepted rows); returns how many are new.

        A value that already has a live claim (a replayed record) is not claimed twice;
        ``seen`` (from :meth:`judge`, for these rows) says which have one without a lookup.
        """
        h = np.asarray(hashes, dtype=np.uint64)
        keep = ~np.asarray(nulls, dtype=bool)
        if seen is not None:
            keep &= ~np.asarray(seen, dtype=bool)
        else:
            keep[keep] &= ~self.claimed(h[keep])
        h, off = h[keep], np.asarray(offsets, dtype=np.int64)[keep]
        buckets = np.asarray(event_ms, dtype=np.int64)[keep] // self.bucket_ms
        if not len(h):
            return 0
        for b in np.unique(buckets):
            rows = buckets == b
            chunk = Chunk(int(b), self._chunks.get(int(b), 0), h[rows], off[rows])
            self._apply(chunk)
            self._pending.append(chunk)
        self._newest = max(self._newest, int(np.asarray(event_ms, dtype=np.int64)[keep].max()))
        return len(h)

    def reclaim(self, hashes: np.ndarray, offsets: np.ndarray, event_ms: np.ndarray) -> int:
        """Queue the changelog of claims already held again: those of ``hashes`` first claimed at ``offsets``
        (a batch read again after its outputs, changelog included, were lost). Returns how many."""
        h, off = np.asarray(hashes, dtype=np.uint64), np.asarray(offsets, dtype=np.int64)
        if not len(h):
            return 0
        mine = self.first_claims(h) == off
        h, off = h[mine], off[mine]
        buckets = np.asarray(event_ms, dtype=np.int64)[mine] // self.bucket_ms
        for b in np.unique(buckets).tolist():
            rows = buckets == b
            seq = self._chunks.get(b, 0)
            self._pending.append(Chunk(b, seq, h[rows], off[rows]))
            self._chunks[b] = seq + 1
        return len(h)

    def _apply(self, chunk: Chunk) -> None:
        buckets = np.full(len(chunk.hashes), chunk.bucket, dtype=np.int64)
        self._runs.append(_Run(chunk.hashes, chunk.offsets, buckets))
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            last = self._runs.pop()
            self._runs[-1] = self._runs[-1].merged(last)
        self._chunks[chunk.bucket] = max(self._chunks.get(chunk.bucket, 0), chunk.seq + 1)

    def expire(self, now_event_ms: int | None = None) -> int:
        """Drop the buckets wholly older than the horizon (before ``now_event_ms``, default the
        newest claim); returns the claims dropped. Their changelog keys become tombstones."""
        now = self._newest if now_event_ms is None else int(now_event_ms)
        expired = sorted(b for b in self._chunks if (b + 1) * self.bucket_ms + self.horizon_ms <= now)
        if not expired:
            return 0
        before = len(self)
        runs = [r.without(expired[-1]) for r in self._runs]
        self._runs = [r for r in runs if r is not None]
        for b in expired:
            self._tombstones += [f"{b}/{seq}" for seq in range(self._chunks.pop(b))]
        return before - len(self)

    # --- checkpoints
    def take_changes(self) -> UniqueChanges:
        """Changes since the last call, for the changelog (write them before committing offsets)."""
        changes = UniqueChanges(tuple(self._pending), tuple(self._tombstones))
        self._pending, self._tombstones = [], []
        return changes

    @classmethod
    def restore(cls, horizon_ms: int, chunks: list[Chunk], bucket_ms: int | None = None) -> UniqueState:
        """The state rebuilt from the live changelog records (tombstoned keys left out by the caller)."""
        state = cls(horizon_ms, bucket_ms)
        if not chunks:
            return state
        for chunk in chunks:
            state._chunks[chunk.bucket] = max(state._chunks.get(chunk.bucket, 0), chunk.seq + 1)
        state._runs = [
            _Run(
                np.concatenate([c.hashes for c in chunks]),
                np.concatenate([c.offsets for c in chunks]),
                np.concatenate([np.full(len(c.hashes), c.bucket, dtype=np.int64) for c in chunks]),
            )
        ]
        state._newest = max((c.bucket + 1) * state.bucket_ms - 1 for c in chunks)
        return state
