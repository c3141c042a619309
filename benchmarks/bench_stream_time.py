"""What stream time adds to a batch: windows, watermarks and stream uniqueness next to validation.

Run: ``.venv/bin/python benchmarks/bench_stream_time.py [--batch 5000] [--batches 200]``

On the example feature contract (``event_id`` is the primary key: stream uniqueness on
a UUID string; ``event_ts`` the event time; 10 s windows, 2 s of event time per batch as on a live feed), each
batch is validated by the engine (the baseline, as the worker does) and then judged
on stream time: ``StreamTime.process`` (event time, late/skew marks, uniqueness judge
and claims, window partials for every rule, snapshots and heartbeats) plus the
amended routing verdict, and the records for the internal and changelog topics are
encoded. The table shows medians per batch and the ratio to validation alone, the
uniqueness state size and the bytes written to the stream-time topics per batch.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import polars as pl

from streams.contracts.loader import load_contract
from streams.contracts.stream import StreamSpec
from streams.testing import generate_feature_frame
from streams.validation.engine import compile_plan
from streams.windows.codec import encode
from streams.windows.plan import WindowPlan
from streams.windows.route import amend
from streams.windows.stream import StreamConfig, StreamTime
from streams.windows.unique import encode_chunk

CONTRACT = Path(__file__).resolve().parents[1] / "contracts" / "card_transactions.odcs.yaml"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--partitions", type=int, default=3)
    args = ap.parse_args()
    contract = load_contract(CONTRACT)
    so = contract.schema()
    plan = WindowPlan.of(contract, so, StreamSpec(event_time="event_ts"))
    compiled = compile_plan(contract)
    stream = StreamTime(plan, StreamConfig(window_ms=10_000, lateness_ms=1_000, idle_ms=30_000,
                                           max_skew_ms=10**12, unique_ms=86_400_000), args.partitions)  # fmt: skip
    pool = generate_feature_frame(args.batch * 4, seed=7)
    base_ms = int(pool.get_column("event_ts").dt.epoch("ms").min() or 0)
    offsets = np.zeros(args.partitions, dtype=np.int64)
    validate_t, stream_t, encode_t, out_bytes = [], [], [], []
    for i in range(args.batches):
        frame = pool.slice((i % 4) * args.batch, args.batch)
        # fresh keys and advancing event time per batch, like a live feed
        frame = frame.with_columns(
            pl.col("event_id").str.slice(0, 24) + pl.lit(f"{i:012x}"),
            (
                pl.lit(base_ms + i * 2_000).cast(pl.Datetime("ms", "UTC"))
                + pl.duration(microseconds=pl.int_range(pl.len()) * 400)
            ).alias("event_ts"),
        )
        parts = np.arange(args.batch, dtype=np.int64) % args.partitions
        offs = np.empty(args.batch, dtype=np.int64)
        for p in range(args.partitions):
            rows = np.flatnonzero(parts == p)
            offs[rows] = offsets[p] + np.arange(len(rows))
            offsets[p] += len(rows)
        kafka_ms = np.full(args.batch, base_ms + i * 2_000, dtype=np.int64)
        t0 = time.perf_counter()
        report = compiled.validate(frame)
        t1 = time.perf_counter()
        conformed = compiled.conform(frame) if plan.needs_frame else frame
        out = stream.process(report, conformed, parts, offs, kafka_ms, now_ms=base_ms + i * 2_000)
        amend(report, plan, out.valid, out.unique_fails, out.bad_time)
        t2 = time.perf_counter()
        size = sum(len(encode(r)) for r in out.records)
        size += sum(len(encode_chunk(c)) for ch in out.changes.values() for c in ch.chunks)
        t3 = time.perf_counter()
        validate_t.append(t1 - t0)
        stream_t.append(t2 - t1)
        encode_t.append(t3 - t2)
        out_bytes.append(size)
    med = statistics.median
    v, s, e = med(validate_t) * 1e3, med(stream_t) * 1e3, med(encode_t) * 1e3
    keys = sum(len(u) for st in stream.states.values() for u in st.unique.values())
    nbytes = sum(u.nbytes for st in stream.states.values() for u in st.unique.values())
    print(f"batches of {args.batch:,} rows over {args.partitions} partitions, {args.batches} batches (medians)")
    print(f"{'validate (engine)':32s} {v:8.2f} ms   1.00")
    print(f"{'stream time (windows+unique)':32s} {s:8.2f} ms   {s / v:4.2f}")
    print(f"{'encode state records':32s} {e:8.2f} ms   {e / v:4.2f}")
    print(f"uniqueness state: {keys:,} keys, {nbytes / max(keys, 1):.1f} bytes/key")
    print(f"state topics: {med(out_bytes):,.0f} bytes per batch ({med(out_bytes) / args.batch:.1f} per record)")


if __name__ == "__main__":
    main()
