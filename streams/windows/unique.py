"""Stream uniqueness of one field on one source partition: bounded, restart-safe state.

On the stream, ``unique`` / ``primaryKey`` mean: a record fails ``field_uniqueness``
when a record with the same non-null value was **accepted** earlier within the
uniqueness horizon. The first accepted record claims the value; within a batch,
offset order decides; a record rejected for any reason claims nothing; null never
fails and never claims.

**State.** Each claim is a stable 64-bit hash of the value (:mod:`.hashing`) and the
offset of the claiming record: 16 bytes per key, kept in sorted numpy runs grouped
in time buckets (by the claimer's event time, 1/24 of the horizon each). Lookups are
vectorised binary searches, one per run; a bucket that no longer receives claims is
compacted to one run, the newest bucket keeps a few runs of geometric sizes.
Claims expire by dropping whole buckets: a claim lives between ``horizon`` and
``horizon + bucket`` after its event time.

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
from dataclasses import dataclass, field

import numpy as np

__all__ = ["BYTES_PER_KEY", "Chunk", "UniqueChanges", "UniqueState", "decode_chunk", "encode_chunk"]

#: Memory of one live claim: a uint64 hash and an int64 offset.
BYTES_PER_KEY = 16
BUCKETS_PER_HORIZON = 24
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


@dataclass(slots=True)
class _Bucket:
    runs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (sorted hashes, offsets)
    chunks: int = 0  # changelog records written for this bucket (next seq)

    @property
    def size(self) -> int:
        return sum(len(h) for h, _ in self.runs)

    def add(self, hashes: np.ndarray, offsets: np.ndarray, compact: bool) -> None:
        order = np.argsort(hashes, kind="stable")
        self.runs.append((hashes[order], offsets[order]))
        while len(self.runs) > 1 and (compact or len(self.runs[-2][0]) <= 2 * len(self.runs[-1][0])):
            (h1, o1), (h2, o2) = self.runs[-2], self.runs[-1]
            h, o = np.concatenate([h1, h2]), np.concatenate([o1, o2])
            order = np.argsort(h, kind="stable")  # two sorted runs: timsort merges them in linear time
            self.runs[-2:] = [(h[order], o[order])]


class UniqueState:
    """Claims of one unique field on one source partition (see the module docstring)."""

    def __init__(self, horizon_ms: int, bucket_ms: int | None = None) -> None:
        if horizon_ms <= 0:
            raise ValueError(f"the uniqueness horizon must be longer than 0 ms, got {horizon_ms}")
        self.horizon_ms = int(horizon_ms)
        self.bucket_ms = int(bucket_ms or max(1, self.horizon_ms // BUCKETS_PER_HORIZON))
        self._buckets: dict[int, _Bucket] = {}
        self._newest = -(2**62)  # newest claimer event time
        self._pending: list[Chunk] = []
        self._tombstones: list[str] = []

    # --- size
    def __len__(self) -> int:
        return sum(b.size for b in self._buckets.values())

    @property
    def nbytes(self) -> int:
        return sum(h.nbytes + o.nbytes for b in self._buckets.values() for h, o in b.runs)

    # --- lookups
    def claimed_before(self, hashes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Per row: some claim of the same hash was made at a lower offset."""
        h = np.asarray(hashes, dtype=np.uint64)
        own = np.asarray(offsets, dtype=np.int64)
        first = np.full(len(h), np.iinfo(np.int64).max, dtype=np.int64)
        for bucket in self._buckets.values():
            for run_h, run_o in bucket.runs:
                if not len(run_h):
                    continue
                idx = np.searchsorted(run_h, h)
                idx[idx == len(run_h)] = 0
                hit = run_h[idx] == h
                first = np.where(hit, np.minimum(first, run_o[idx]), first)
        return first < own

    def claimed(self, hashes: np.ndarray) -> np.ndarray:
        """Per row: the hash has a live claim (whatever its offset)."""
        return self.claimed_before(hashes, np.full(len(hashes), np.iinfo(np.int64).max, dtype=np.int64))

    def judge(
        self,
        hashes: np.ndarray,
        nulls: np.ndarray,
        offsets: np.ndarray,
        eligible: np.ndarray,
    ) -> np.ndarray:
        """Which records of one batch (offset order) fail uniqueness; nothing is claimed here.

        ``eligible``: the record passes every other gating rule (it is accepted unless
        it is a duplicate). A record fails when its value was claimed at a lower
        offset, or an earlier eligible, non-failing record of the batch has its value.
        """
        n = len(hashes)
        h = np.asarray(hashes, dtype=np.uint64)
        present = ~np.asarray(nulls, dtype=bool)
        off = np.asarray(offsets, dtype=np.int64)
        fails = np.zeros(n, dtype=bool)
        if not n:
            return fails
        fails[present] = self.claimed_before(h[present], off[present])
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
    def claim(self, hashes: np.ndarray, nulls: np.ndarray, offsets: np.ndarray, event_ms: np.ndarray) -> int:
        """Record the claims of accepted records (pass only accepted rows); returns how many are new.

        A value that already has a live claim (a replayed record) is not claimed twice.
        """
        h = np.asarray(hashes, dtype=np.uint64)
        keep = ~np.asarray(nulls, dtype=bool)
        keep[keep] &= ~self.claimed(h[keep])
        h, off = h[keep], np.asarray(offsets, dtype=np.int64)[keep]
        buckets = np.asarray(event_ms, dtype=np.int64)[keep] // self.bucket_ms
        if not len(h):
            return 0
        newest = int(buckets.max())
        for b in np.unique(buckets):
            rows = buckets == b
            chunk = Chunk(int(b), self._bucket(int(b)).chunks, h[rows], off[rows])
            self._apply(chunk, compact=int(b) < max(newest, self._newest // self.bucket_ms))
            self._pending.append(chunk)
        self._newest = max(self._newest, int(np.asarray(event_ms, dtype=np.int64)[keep].max()))
        return len(h)

    def _bucket(self, b: int) -> _Bucket:
        bucket = self._buckets.get(b)
        if bucket is None:
            bucket = self._buckets[b] = _Bucket()
        return bucket

    def _apply(self, chunk: Chunk, compact: bool) -> None:
        bucket = self._bucket(chunk.bucket)
        bucket.add(chunk.hashes, chunk.offsets, compact)
        bucket.chunks = max(bucket.chunks, chunk.seq + 1)

    def expire(self, now_event_ms: int | None = None) -> int:
        """Drop the buckets wholly older than the horizon (before ``now_event_ms``, default the
        newest claim); returns the claims dropped. Their changelog keys become tombstones."""
        now = self._newest if now_event_ms is None else int(now_event_ms)
        dropped = 0
        for b in sorted(self._buckets):
            if (b + 1) * self.bucket_ms + self.horizon_ms > now:
                break
            bucket = self._buckets.pop(b)
            dropped += bucket.size
            self._tombstones += [f"{b}/{seq}" for seq in range(bucket.chunks)]
        return dropped

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
        for chunk in sorted(chunks, key=lambda c: (c.bucket, c.seq)):
            state._apply(chunk, compact=True)
            state._newest = max(state._newest, (chunk.bucket + 1) * state.bucket_ms - 1)
        return state
