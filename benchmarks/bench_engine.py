"""Fused polars engine vs pandera-polars lazy validation on the example feature contract.

    .venv/bin/python benchmarks/bench_engine.py [--sizes 1000,10000,100000,1000000] [--repeat 5]

For each size, on clean data and with 1% bad rows (out-of-range amounts, unknown
countries, broken patterns, nulls in required fields, velocity inconsistencies),
it times ``CompiledPlan.validate`` (the full report: counts, per-row validity and
violations, failure cases) and ``pandera.polars.DataFrameSchema.validate(lazy=True)``
(catching ``SchemaErrors``) on the same frame, and prints medians and ratios.
pandera is the baseline. Compilation happens once, outside the timings, as in a worker.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pandera.errors
import polars as pl

from streams.contracts.loader import load_contract
from streams.testing import generate_feature_frame
from streams.validation.engine import compile_plan

CONTRACT = Path(__file__).resolve().parents[1] / "contracts" / "card_transactions.odcs.yaml"


def with_bad_rows(df: pl.DataFrame, share: float, seed: int = 1) -> pl.DataFrame:
    """Break ``share`` of the rows, cycling through five kinds of violation."""
    n = df.height
    idx = pl.int_range(0, n, eager=True).shuffle(seed=seed).head(max(1, int(n * share)))
    kind = pl.Series("kind", [i % 5 for i in range(idx.len())])
    marks = pl.DataFrame({"_i": idx, "_k": kind})
    out = df.with_row_index("_i").join(marks, on="_i", how="left")
    k = pl.col("_k")
    out = out.with_columns(
        pl.when(k == 0).then(-pl.col("amount")).otherwise(pl.col("amount")).alias("amount"),
        pl.when(k == 1).then(pl.lit("ZZ")).otherwise(pl.col("merchant_country")).alias("merchant_country"),
        pl.when(k == 2).then(pl.lit("abc")).otherwise(pl.col("merchant_category_code")).alias("merchant_category_code"),
        pl.when(k == 3).then(None).otherwise(pl.col("card_hash")).alias("card_hash"),
        pl.when(k == 4)
        .then(pl.col("txn_count_24h") + 3)
        .otherwise(pl.col("txn_count_1h"))
        .cast(pl.Int32)
        .alias("txn_count_1h"),
    )
    return out.drop("_i", "_k")


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000,1000000")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    contract = load_contract(CONTRACT)
    plan = compile_plan(contract)
    schema = contract.to_pandera()
    n_rules = len(contract.schema().rules)
    print(
        f"contract {contract.ref}: {len(contract.schema().fields)} fields, {n_rules} rules; "
        f"polars {pl.__version__}, pandera {pandera.__version__}; median of {args.repeat}"
    )
    header = (
        f"{'rows':>9} {'data':>6} {'fused ms':>10} {'pandera ms':>11} {'speed-up':>9} {'fused rows/s':>13} "
        f"{'invalid':>8}"
    )
    print(header)
    print("-" * len(header))
    base = generate_feature_frame(max(int(s) for s in args.sizes.split(",")), seed=0)
    for size in (int(s) for s in args.sizes.split(",")):
        clean = base.head(size)
        for label, df in (("clean", clean), ("1% bad", with_bad_rows(clean, 0.01))):

            def pandera_run(df: pl.DataFrame = df) -> None:
                with contextlib.suppress(pandera.errors.SchemaErrors):
                    schema.validate(df, lazy=True)

            fused = median_seconds(lambda df=df: plan.validate(df), args.repeat)
            reference = median_seconds(pandera_run, max(1, min(args.repeat, 3 if size >= 1_000_000 else args.repeat)))
            invalid = plan.validate(df).invalid_rows
            print(
                f"{size:>9,} {label:>6} {fused * 1e3:>10.1f} {reference * 1e3:>11.1f} "
                f"{reference / fused:>8.1f}x {size / fused:>13,.0f} {invalid:>8,}"
            )


if __name__ == "__main__":
    main()
