"""Stream uniqueness state at scale: bytes per key, inserts/s and lookups/s with 10 million keys.

Run: ``.venv/bin/python benchmarks/bench_unique.py [--keys 10000000] [--batch 5000] [--kind int|uuid]``

Claims ``--keys`` distinct keys in batches of ``--batch`` (each batch: stable hash,
``judge`` against the state, ``claim`` of the accepted rows), event times spread
over one uniqueness horizon (24 h, 24 buckets), then times lookups of batches
against the full state (half the keys present, half absent) and the
changelog encoding and restore. Figures are medians over batches; the
baseline in the same run is a Python ``set`` of the same hashes (no offsets, no
horizon, not restorable), for scale.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import numpy as np
import polars as pl

from streams.windows.hashing import stable_hash
from streams.windows.unique import UniqueState, decode_chunk, encode_chunk

HORIZON = 86_400_000


def keys(kind: str, start: int, n: int) -> pl.Series:
    if kind == "int":
        return pl.Series(np.arange(start, start + n, dtype=np.int64) * 7919 + 13)
    return pl.Series([str(uuid.UUID(int=(i * 0x9E3779B97F4A7C15) % (1 << 128))) for i in range(start, start + n)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=10_000_000)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--kind", choices=["int", "uuid"], default="int")
    ap.add_argument("--lookups", type=int, default=200, help="lookup batches against the full state")
    args = ap.parse_args()
    n, b = args.keys, args.batch
    state = UniqueState(HORIZON)
    batches = n // b
    step = HORIZON // batches
    hash_t, insert_t = [], []
    offset = 0
    for i in range(batches):
        series = keys(args.kind, i * b, b)
        t0 = time.perf_counter()
        h, nulls = stable_hash(series)
        t1 = time.perf_counter()
        off = np.arange(offset, offset + b, dtype=np.int64)
        seen = np.zeros(b, dtype=bool)
        fails = state.judge(h, nulls, off, np.ones(b, dtype=bool), seen=seen)
        ok = ~fails
        state.claim(h[ok], nulls[ok], off[ok], np.full(int(ok.sum()), i * step, dtype=np.int64), seen=seen[ok])
        t2 = time.perf_counter()
        hash_t.append(t1 - t0)
        insert_t.append(t2 - t1)
        offset += b
        if fails.any():
            raise SystemExit(f"false duplicate in batch {i}: {int(fails.sum())} keys")
    size = len(state)
    changes = state.take_changes()
    lookup_t = []
    for j in range(args.lookups):
        present = keys(args.kind, (j * 7919 * b) % max(n - b, 1), b // 2)
        absent = keys(args.kind, n + j * b, b - b // 2)
        h, nulls = stable_hash(pl.concat([present, absent]))
        t0 = time.perf_counter()
        hit = state.claimed(h)
        lookup_t.append(time.perf_counter() - t0)
        if int(hit.sum()) != b // 2:
            raise SystemExit(f"lookup batch {j}: {int(hit.sum())} hits, expected {b // 2}")
    t0 = time.perf_counter()
    blobs = [(c.key, encode_chunk(c)) for c in changes.chunks]
    t1 = time.perf_counter()
    chunks = [decode_chunk(k, v) for k, v in blobs]
    restored = UniqueState.restore(HORIZON, [c for c in chunks if not isinstance(c, str)])
    t2 = time.perf_counter()
    assert len(restored) == size
    base_t = []
    seen: set[int] = set()
    for i in range(min(batches, 400)):
        h, _ = stable_hash(keys(args.kind, i * b, b))
        t0b = time.perf_counter()
        values = h.tolist()
        _dups = [v in seen for v in values]
        seen.update(values)
        base_t.append(time.perf_counter() - t0b)
    med = statistics.median
    print(f"keys {size:,} ({args.kind}), batches of {b:,}, {state.buckets} buckets, {len(state._runs)} runs")
    print(f"state bytes per key            {state.nbytes / size:8.1f}")
    print(f"changelog bytes per key        {sum(len(v) for _, v in blobs) / size:8.1f}  ({len(blobs):,} records)")
    print(f"hash        keys/s (median)    {b / med(hash_t):12,.0f}")
    print(f"judge+claim keys/s (median)    {b / med(insert_t):12,.0f}   total {sum(insert_t):.1f} s")
    print(f"lookup      keys/s (median)    {b / med(lookup_t):12,.0f}   (state full: {size:,} keys)")
    print(f"python set  keys/s (median)    {b / med(base_t):12,.0f}   (baseline, first {len(base_t)} batches)")
    print(f"encode changelog               {t1 - t0:8.2f} s;  decode + restore {t2 - t1:.2f} s")


if __name__ == "__main__":
    main()
