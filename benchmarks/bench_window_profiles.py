"""What window profiles add to a batch on stream time: profiling each window slice, merging it into the open
window partial, and the bigger internal-topic records, next to the engine's validation of the same batch.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_window_profiles.py [--sizes 10000,100000] [--batches 9] \
        [--no-baseline]

On ``contracts/card_transactions.odcs.yaml`` with generated records (``streams.testing``) and a reference
built from 100,000 generated records, each batch (over 3 source partitions, event time advancing 2 s per
batch, 10 s windows: every batch touches one window per partition) is, in the same run and round-robin:

* validated by the compiled engine (the baseline: what the worker does per batch anyway);
* judged on stream time without profiles (``StreamTime.process``: windows, uniqueness, partials);
* judged on stream time with profiles, every window slice of the batch profiled in one pass
  (``DriftMonitor.profile.slices``, :mod:`streams.profiles.slices`), plus the profile merge into the open partial;
* the baseline of that (unless ``--no-baseline``): the same with one ``profile_frame`` call per window slice on the
  slice's rows taken out of the batch (the window profiles of both are checked to be byte-identical);
* its internal-topic records encoded, without and with the profile.

Medians per batch; ratios are to validation. The target (issue 11) is profiling <= 50% of the engine's time.
"profile adds" is a difference of two medians of whole stream-time calls, which a loaded machine blurs; the
"slices" columns time the profiling call itself inside the profiled stream-time call (every window slice of the
batch profiled), and "of validate" there is the median of the per-batch ratios to that batch's validation. A last
table gives the same per-batch ratio in CPU time (``time.process_time``: polars' threads included), which other
processes on a shared machine blur less than wall time.
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import polars as pl

from streams.contracts.loader import load_contract
from streams.contracts.model import Contract
from streams.contracts.stream import StreamSpec
from streams.profiles.monitor import DriftMonitor
from streams.profiles.profile import Profile, profile_frame
from streams.profiles.reference import build_reference, save_reference
from streams.profiles.slices import SliceProfiler
from streams.testing import generate_feature_frame
from streams.validation.engine import compile_plan
from streams.windows.codec import encode
from streams.windows.plan import WindowPlan
from streams.windows.stream import StreamConfig, StreamTime

CONTRACT = Path(__file__).resolve().parents[1] / "contracts" / "card_transactions.odcs.yaml"
PARTITIONS = 3


class TimedProfiler(SliceProfiler):
    """A :class:`SliceProfiler` that records how long each ``slices`` call takes."""

    __slots__ = ()
    spent: ClassVar[list[float]] = []
    cpu: ClassVar[list[float]] = []  # process CPU time (every thread)

    def slices(self, frame: pl.DataFrame, slice_ids: np.ndarray, n: int) -> list[Profile]:
        t0, c0 = time.perf_counter(), time.process_time()
        out = super().slices(frame, slice_ids, n)
        TimedProfiler.spent.append(time.perf_counter() - t0)
        TimedProfiler.cpu.append(time.process_time() - c0)
        return out


def card_monitor(contract: Contract) -> DriftMonitor:
    """The drift monitor of ``contract`` against a reference of 100,000 generated card records."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "reference.parquet"
        generate_feature_frame(100_000, seed=100).write_parquet(data)
        save_reference(build_reference(contract, None, [data]), Path(tmp) / "ref.qsref")
        monitor = DriftMonitor.from_contract(contract, path=Path(tmp) / "ref.qsref")
    assert monitor is not None
    return monitor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--batches", type=int, default=9)
    ap.add_argument("--no-baseline", action="store_true", help="skip the per-slice profiling path")
    args = ap.parse_args()
    contract = load_contract(CONTRACT)
    compiled = compile_plan(contract)
    plan = WindowPlan.of(contract, contract.schema(), StreamSpec(event_time="event_ts"))
    monitor = card_monitor(contract)
    config = StreamConfig(window_ms=10_000, lateness_ms=1_000, idle_ms=30_000, max_skew_ms=10**12,
                          unique_ms=86_400_000)  # fmt: skip
    print(f"contract {contract.ref}: {len(monitor.spec.fields)} profiled fields; {PARTITIONS} partitions; "
          f"polars {pl.__version__}; medians of {args.batches} batches")  # fmt: skip
    print(f"{'rows':>8} {'validate ms':>12} {'slices ms':>10} {'of validate':>12} "
          f"{'stream ms':>10} {'+profile ms':>12} {'profile adds':>13} "
          f"{'of validate':>12} {'per-slice adds':>15} {'of validate':>12} {'encode ms':>10} {'+profile ms':>12} "
          f"{'bytes':>8} {'+profile':>9}")  # fmt: skip
    cpu_rows: list[str] = []
    for n in (int(s) for s in args.sizes.split(",")):
        pool = generate_feature_frame(n, seed=n)
        base_ms = int(pool.get_column("event_ts").dt.epoch("ms").min() or 0)
        base_ms -= base_ms % 10_000
        plain = StreamTime(plan, config, PARTITIONS)
        # a SliceProfiler (one pass over the batch), timed
        profiled = StreamTime(plan, config, PARTITIONS, profile=TimedProfiler(monitor.spec))
        # the baseline: a plain callable, so StreamTime profiles slice by slice (one profile_frame query each)
        per_slice = StreamTime(plan, config, PARTITIONS, profile=functools.partial(profile_frame, spec=monitor.spec))
        kinds = ("validate", "plain", "profiled", "per_slice", "enc", "enc_p", "slices", "ratio", "validate_cpu",
                 "slices_cpu", "ratio_cpu")  # fmt: skip
        times: dict[str, list[float]] = {k: [] for k in kinds}
        sizes: dict[str, list[int]] = {"enc": [], "enc_p": []}
        offsets = np.zeros(PARTITIONS, dtype=np.int64)
        for i in range(args.batches + 1):  # the first is a warm-up
            frame = pool.with_columns(
                pl.col("event_id").str.slice(0, 24) + pl.lit(f"{i:012x}"),
                (
                    pl.lit(base_ms + i * 2_000).cast(pl.Datetime("ms", "UTC"))
                    + pl.duration(microseconds=pl.int_range(pl.len()) * (2_000_000 // n))
                ).alias("event_ts"),
            )
            parts = np.arange(n, dtype=np.int64) % PARTITIONS
            offs = np.empty(n, dtype=np.int64)
            for p in range(PARTITIONS):
                rows = np.flatnonzero(parts == p)
                offs[rows] = offsets[p] + np.arange(len(rows))
                offsets[p] += len(rows)
            kafka_ms = np.full(n, base_ms + i * 2_000, dtype=np.int64)
            now = base_ms + i * 2_000
            c0, t0 = time.process_time(), time.perf_counter()
            report = compiled.validate(frame)
            t1, c1 = time.perf_counter(), time.process_time()
            conformed = compiled.conform(frame)
            t2 = time.perf_counter()
            out_plain = plain.process(report, conformed, parts, offs, kafka_ms, now_ms=now)
            t3 = time.perf_counter()
            TimedProfiler.spent.clear()
            TimedProfiler.cpu.clear()
            out_prof = profiled.process(report, conformed, parts, offs, kafka_ms, now_ms=now)
            t4 = time.perf_counter()
            enc = [encode(r) for r in out_plain.records]
            t5 = time.perf_counter()
            enc_p = [encode(r) for r in out_prof.records]
            t6 = time.perf_counter()
            if not args.no_baseline:
                out_slices = per_slice.process(report, conformed, parts, offs, kafka_ms, now_ms=now)
                times["per_slice"].append(time.perf_counter() - t6)
                if [encode(r) for r in out_slices.records] != enc_p:
                    raise SystemExit(f"batch {i}: the per-slice and one-pass window profiles differ")
            if i == 0:
                continue
            times["validate"].append(t1 - t0)
            times["plain"].append(t3 - t2)
            times["profiled"].append(t4 - t3)
            times["slices"].append(sum(TimedProfiler.spent))
            times["ratio"].append(sum(TimedProfiler.spent) / (t1 - t0))
            times["validate_cpu"].append(c1 - c0)
            times["slices_cpu"].append(sum(TimedProfiler.cpu))
            times["ratio_cpu"].append(sum(TimedProfiler.cpu) / max(c1 - c0, 1e-9))
            times["enc"].append(t5 - t4)
            times["enc_p"].append(t6 - t5)
            sizes["enc"].append(sum(map(len, enc)))
            sizes["enc_p"].append(sum(map(len, enc_p)))
        if not args.no_baseline:
            times["per_slice"] = times["per_slice"][1:]  # the warm-up
        med = {k: statistics.median(v) * 1e3 if v else math.nan for k, v in times.items()}
        med["ratio"] = statistics.median(times["ratio"])  # a ratio, not ms
        med["ratio_cpu"] = statistics.median(times["ratio_cpu"])
        adds = med["profiled"] - med["plain"] + med["enc_p"] - med["enc"]
        adds_ps = med["per_slice"] - med["plain"] + med["enc_p"] - med["enc"]
        print(
            f"{n:>8,} {med['validate']:>12.1f} {med['slices']:>10.1f} {med['ratio']:>11.0%} "
            f"{med['plain']:>10.1f} {med['profiled']:>12.1f} {adds:>10.1f} ms "
            f"{adds / med['validate']:>11.0%} {adds_ps:>12.1f} ms {adds_ps / med['validate']:>11.0%} "
            f"{med['enc']:>10.2f} {med['enc_p']:>12.2f} "
            f"{statistics.median(sizes['enc']):>8,.0f} {statistics.median(sizes['enc_p']):>9,.0f}"
        )
        cpu_rows.append(f"{n:>8,} {med['validate_cpu']:>16.1f} {med['slices_cpu']:>14.1f} {med['ratio_cpu']:>15.0%}")
    print("CPU time (time.process_time, every thread of the process), same batches:")
    print(f"{'rows':>8} {'validate cpu ms':>16} {'slices cpu ms':>14} {'of validate':>15}")
    print("\n".join(cpu_rows))


if __name__ == "__main__":
    main()
