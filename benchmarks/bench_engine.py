"""Fused polars engine vs pandera-polars lazy validation: clean batches and the failure path.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_engine.py [--sizes 10000,100000] [--shares 0,0.01,0.1,0.3]
        [--repeat 15] [--pandera-repeat 5] [--contracts card,predictions,sensors]

Contracts: the two examples (``contracts/card_transactions.odcs.yaml``, 24 fields / 71 rules;
``contracts/fraud_predictions.odcs.yaml``) and a small one written for this benchmark
(``benchmarks/contracts/sensor_readings.odcs.yaml``: 9 fields, 21 rules besides the dtypes).
Per contract and size: a clean frame typed as declared, and frames with ``--shares`` of their rows
broken, cycling through five kinds of violation per contract (out of range, unknown enum value,
broken pattern, null in a required field, a cross-field rule). ``card-cross`` (not run by default):
the card contract with its fifth kind breaking both of its cross-field rules on the same rows.

It times ``CompiledPlan.validate`` (compiled once, outside the timings, as in a worker; the full
report: counts, ``valid_mask``, ``violations``, failure cases) on every frame of a (contract, size),
round-robin over ``--repeat`` rounds so the load of the machine hits every variant alike, and
``pandera.polars.DataFrameSchema.validate(lazy=True)`` (catching ``SchemaErrors``; its
failure cases are built too) on the clean and 1% frames. Figures are medians; ``vs clean`` is the
ratio of a frame's median to the clean frame's median in the same run (target <= 1.5);
``vs pandera`` is pandera's median over the engine's on the same frame (target >= 5 at 100k rows
with 1% bad rows). ``cpu ms`` is the engine's median CPU time per call over every thread of the
process (``time.process_time``): on a shared machine it moves less with the load than wall time.

``--reads`` says what is read of each report inside the timing, one table each: ``worker`` (what the
worker pays: validate, then the first ``--sample`` failure cases of every failed check, as its
``rule_violation`` events take them: ``report.cases_of``, or filter + head on an engine without it) and
``full`` (validate with the whole ``failure_cases`` frame rendered, as the CLI and ``to_dict`` read it);
``events`` (``worker`` as the worker's events builder reads it since it stopped building frames: the cases as
dicts, ``report.case_records``, or ``cases_of(...).to_dicts()`` on an engine without it, which it needed too).

``--baseline REV`` also times the engine as it was at git revision ``REV`` (its whole
``streams/validation`` package, loaded from ``git archive`` beside the current one; the other
packages are the current ones), alternating call by call with the current engine on the same
frames (the baseline first every other round: the second of two calls on a frame runs on warmer
caches), after checking that both give the same report: ``base ms`` and ``vs base`` (current over
baseline; below 1 is faster).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandera.errors
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.contracts.loader import load_contract  # noqa: E402
from streams.testing import generate_feature_frame  # noqa: E402
from streams.testing.generators import generate_prediction_records  # noqa: E402
from streams.validation.engine import CompiledPlan, compile_plan  # noqa: E402

CONTRACTS = {
    "card": ROOT / "contracts" / "card_transactions.odcs.yaml",
    "card-cross": ROOT / "contracts" / "card_transactions.odcs.yaml",  # both expressions broken on the same rows
    "predictions": ROOT / "contracts" / "fraud_predictions.odcs.yaml",
    "sensors": ROOT / "benchmarks" / "contracts" / "sensor_readings.odcs.yaml",
}
Kinds = list[tuple[str, pl.Expr] | list[tuple[str, pl.Expr]]]  # (column, its broken value), or several per kind


def with_bad_rows(df: pl.DataFrame, share: float, kinds: Kinds, seed: int = 1) -> pl.DataFrame:
    """Break ``share`` of the rows (random rows), cycling through ``kinds``."""
    if share <= 0:
        return df
    n = df.height
    idx = pl.int_range(0, n, eager=True).shuffle(seed=seed).head(max(1, int(n * share)))
    marks = pl.DataFrame({"_i": idx, "_k": pl.int_range(0, idx.len(), eager=True) % len(kinds)})
    out = df.with_row_index("_i").join(marks, on="_i", how="left")
    k = pl.col("_k")
    breaks: dict[str, list[tuple[int, pl.Expr]]] = {}
    for i, kind in enumerate(kinds):
        for col, bad in kind if isinstance(kind, list) else [kind]:
            breaks.setdefault(col, []).append((i, bad))
    changed = []
    for col, items in breaks.items():
        chain = pl.when(k == items[0][0]).then(items[0][1])
        for i, bad in items[1:]:
            chain = chain.when(k == i).then(bad)
        changed.append(chain.otherwise(pl.col(col)).alias(col))
    return out.with_columns(changed).drop("_i", "_k")


def card(n: int, cross: bool = False) -> tuple[pl.DataFrame, Kinds]:
    """``cross``: the fifth kind breaks both row-level expressions of the contract on the same rows."""
    kinds: Kinds = [
        ("amount", -pl.col("amount")),
        ("merchant_country", pl.lit("ZZ")),
        ("merchant_category_code", pl.lit("abc")),
        ("card_hash", pl.lit(None, pl.String)),
        ("txn_count_1h", (pl.col("txn_count_24h") + 3).cast(pl.Int32)),
    ]
    if cross:
        kinds[-1] = [kinds[-1], ("amount_eur", pl.col("amount_sum_24h_eur") + 50)]  # type: ignore[list-item]
    return generate_feature_frame(n, seed=0), kinds


FRAUD = pl.lit("fraud")


def predictions(n: int, plan: CompiledPlan) -> tuple[pl.DataFrame, Kinds]:
    records = generate_prediction_records(n, seed=0).records
    kinds = [
        ("score", pl.lit(1.25)),
        ("model_name", pl.lit("card-fraud-xgb")),
        ("model_version", pl.lit("v3.2")),
        ("event_id", pl.lit(None, pl.String)),
        ("predicted_label", pl.when(pl.col("predicted_label") == "fraud").then(pl.lit("legit")).otherwise(FRAUD)),
    ]
    return plan.conform(pl.DataFrame(records)), kinds


def sensors(n: int) -> tuple[pl.DataFrame, Kinds]:
    i = pl.int_range(0, n, eager=True)
    start = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
    df = pl.DataFrame({
        "reading_id": i.map_elements(lambda v: f"r-{v:09d}", return_dtype=pl.String),
        "device_id": (i * 7919 % (1 << 24)).map_elements(lambda v: f"dev-{v:06x}", return_dtype=pl.String),
        "site": pl.Series(["north", "south", "east", "west"]).gather(i % 4),
        "reading_ts": (i * 1000 + start).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
        "temperature_c": (i % 400).cast(pl.Float64) / 10.0,
        "humidity_pct": (i % 800).cast(pl.Float64) / 10.0 + 10.0,
        "battery_v": 3.2 + (i % 100).cast(pl.Float64) / 100.0,
        "firmware": pl.Series(["1.2.3", "1.3.0", "2.0.11"]).gather(i % 3),
        "status": pl.Series(["ok", "degraded"]).gather(i % 2),
    })  # fmt: skip
    kinds = [
        ("temperature_c", pl.lit(120.0)),
        ("site", pl.lit("mars")),
        ("reading_id", pl.lit("bad")),
        ("battery_v", pl.lit(None, pl.Float64)),
        ("status", pl.lit("fault")),  # with a normal battery and temperature: breaks the cross-field rule
    ]
    return df, kinds


def frames(name: str, n: int, plan: CompiledPlan) -> tuple[pl.DataFrame, Kinds]:
    if name in ("card", "card-cross"):
        return card(n, cross=name == "card-cross")
    if name == "predictions":
        return predictions(n, plan)
    return sensors(n)


def timed(fn: Callable[[], object], cpu: list[float] | None = None) -> float:
    """Wall seconds of ``fn()``; its CPU seconds (every thread of the process) appended to ``cpu``."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    if cpu is not None:
        cpu.append(time.process_time() - c0)
    return wall


def baseline_compiler(rev: str) -> Callable[[Any], Any]:
    """``compile_plan`` of the engine at git revision ``rev``: its whole ``streams/validation`` package
    (engine, failures, report, predicates, regex, memo, conform), loaded from ``git archive`` as the
    package ``qs_baseline_validation`` (its imports of ``streams.validation`` renamed; its ``__init__``
    left empty, so the pandera backends are not registered twice). Other packages are the current ones."""
    folder = Path(tempfile.mkdtemp(prefix="qs-engine-baseline-"))
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "streams/validation"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    package = folder / "qs_baseline_validation"
    (folder / "streams" / "validation").rename(package)
    for path in package.rglob("*.py"):
        text = path.read_text().replace("streams.validation", "qs_baseline_validation")
        path.write_text("" if path == package / "__init__.py" else text)
    sys.path.insert(0, str(folder))
    return importlib.import_module("qs_baseline_validation.engine").compile_plan  # type: ignore[no-any-return]


def worker_read(report: Any, sample: int) -> None:
    """What the worker renders of a report: the first ``sample`` failure cases of each failed check (the samples
    of its ``rule_violation`` events, ``streams.events.builders._sample``)."""
    cases_of = getattr(report, "cases_of", None)  # an engine before lazy failure cases renders them all
    for check in report.checks:
        if not check.passed:
            if cases_of is not None:
                cases_of(check.name, sample)
            else:
                report.failure_cases.filter(pl.col("rule") == check.name).head(sample)


def events_read(report: Any, sample: int) -> None:
    """What the worker's events builder reads (``streams.events.builders._sample``): the first ``sample`` failure
    cases of each failed check as dicts: ``report.case_records``, or ``cases_of(...).to_dicts()`` on an engine
    without it."""
    records = getattr(report, "case_records", None)
    for check in report.checks:
        if not check.passed:
            if records is not None:
                records(check.name, sample)
            else:
                report.cases_of(check.name, sample).to_dicts()


def full_read(report: Any) -> None:
    """The whole failure-case frame rendered (as ``to_dict`` and the CLI read it)."""
    report.failure_cases  # noqa: B018


def same_report(a: Any, b: Any) -> bool:
    return (
        [c.to_dict() for c in a.checks] == [c.to_dict() for c in b.checks]
        and a.failure_cases.equals(b.failure_cases)
        and a.valid_mask.equals(b.valid_mask)
        and a.violations.equals(b.violations)
    )


def measure(
    plan: Any, schema: Any, batches: dict[float, pl.DataFrame], repeat: int, pandera_repeat: int,
    pandera_shares: set[float], base: Any = None, read: Callable[[Any], None] = full_read,
) -> tuple[dict[float, float], dict[float, float], dict[float, float], dict[float, tuple[float, float]]]:  # fmt: skip
    """Median seconds per share: the engine (round-robin over the shares), pandera (on ``pandera_shares``),
    the engine's CPU seconds and the baseline engine's (wall, CPU) seconds (alternating with the engine). Each
    timed call validates and then ``read``s the report."""
    for df in batches.values():  # warm-up (and the per-schema plan)
        plan.validate(df)
        if base is not None and not same_report(base.validate(df), plan.validate(df)):
            raise SystemExit("the baseline engine gives another report on the same frame")
    times: dict[float, list[float]] = {share: [] for share in batches}
    cpu: dict[float, list[float]] = {share: [] for share in batches}
    before: dict[float, list[float]] = {share: [] for share in batches} if base is not None else {}
    before_cpu: dict[float, list[float]] = {share: [] for share in batches}
    for round_ in range(repeat):
        for share, df in batches.items():
            if base is not None and round_ % 2:  # the baseline first every other round (no order bias)
                before[share].append(timed(lambda df=df: read(base.validate(df)), before_cpu[share]))
            times[share].append(timed(lambda df=df: read(plan.validate(df)), cpu[share]))
            if base is not None and not round_ % 2:
                before[share].append(timed(lambda df=df: read(base.validate(df)), before_cpu[share]))

    def pandera_run(df: pl.DataFrame) -> None:
        with contextlib.suppress(pandera.errors.SchemaErrors):
            schema.validate(df, lazy=True)

    reference: dict[float, list[float]] = {share: [] for share in batches if share in pandera_shares}
    for _ in range(pandera_repeat):
        for share, spent in reference.items():
            spent.append(timed(lambda share=share: pandera_run(batches[share])))
    return (
        {share: statistics.median(t) for share, t in times.items()},
        {share: statistics.median(t) for share, t in reference.items() if t},  # none with --pandera-repeat 0
        {share: statistics.median(t) for share, t in cpu.items()},
        {share: (statistics.median(t), statistics.median(before_cpu[share])) for share, t in before.items()},
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--shares", default="0,0.01,0.1,0.3")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--pandera-repeat", type=int, default=5)
    ap.add_argument("--pandera-shares", default="0,0.01")
    ap.add_argument("--contracts", default="card,predictions,sensors", help=f"of {', '.join(CONTRACTS)}")
    ap.add_argument(
        "--api",
        choices=("plan", "contract"),
        default="plan",
        help="plan: CompiledPlan.validate (compiled once, as a worker); contract: Contract.validate",
    )
    ap.add_argument("--baseline", metavar="REV", help="also time the engine at this git revision, alternating")
    ap.add_argument("--reads", default="worker,full", help="what is read of each report (worker, events, full)")
    ap.add_argument("--sample", type=int, default=20, help="failure cases per failed check read by `worker`")
    args = ap.parse_args()
    compile_base = baseline_compiler(args.baseline) if args.baseline else None
    for reads in args.reads.split(","):
        table(args, reads, compile_base)


def table(args: argparse.Namespace, reads: str, compile_base: Callable[[Any], Any] | None) -> None:
    """One table: every contract, size and share, each report read as ``reads`` says."""
    read: Callable[[Any], None] = (
        full_read if reads == "full"
        else (lambda r: events_read(r, args.sample)) if reads == "events"
        else lambda r: worker_read(r, args.sample)
    )  # fmt: skip
    shares = [float(s) for s in args.shares.split(",")]
    pandera_shares = {float(s) for s in args.pandera_shares.split(",") if s}  # "": pandera not run
    print(f"polars {pl.__version__}, pandera {pandera.__version__}; engine median of {args.repeat} round-robin "
          f"rounds, pandera median of {args.pandera_repeat}; {args.api}.validate")  # fmt: skip
    what = {
        "worker": f"validate + the first {args.sample} failure cases of each failed check (report.cases_of)",
        "events": f"validate + the first {args.sample} failure cases of each failed check as dicts (what the worker's "
        "events read: report.case_records)",
    }.get(reads, "validate + the whole failure_cases frame rendered")
    print(f"\n{reads}: {what}")
    header = (
        f"| {'contract':<11} | {'rows':>7} | {'bad':>4} | {'engine ms':>9} | {'vs clean':>8} | {'pandera ms':>10} | "
        f"{'vs pandera':>10} | {'rows/s':>11} | {'cpu ms':>6} | {'cpu vs clean':>12} | {'invalid':>7} | {'cases':>6} |"
    ) + (f" {'base ms':>7} | {'vs base':>7} | {'base cpu':>8} | {'cpu vs base':>11} | {'base cpu vs clean':>17} |"
         if compile_base else "")  # fmt: skip
    print(header)
    print("|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|")
    for name in args.contracts.split(","):
        contract = load_contract(CONTRACTS[name])
        plan = compile_plan(contract)
        for size in (int(s) for s in args.sizes.split(",")):
            clean, kinds = frames(name, size, plan)
            batches = {share: with_bad_rows(clean, share, kinds) for share in shares}
            target = plan if args.api == "plan" else contract
            pandera_schema = contract.to_pandera()
            base = compile_base(contract) if compile_base else None
            engine, reference, cpu, before = measure(
                target, pandera_schema, batches, args.repeat, args.pandera_repeat, pandera_shares, base, read
            )
            for share, df in batches.items():
                fused, ref = engine[share], reference.get(share)
                report = plan.validate(df)
                ref_ms = f"{ref * 1e3:>10.1f}" if ref else f"{'-':>10}"
                speedup = f"{ref / fused:>9.1f}x" if ref else f"{'-':>10}"
                ratio = fused / engine[shares[0]]
                print(
                    f"| {name:<11} | {size:>7,} | {share:>4.0%} | {fused * 1e3:>9.2f} | {ratio:>7.2f}x | "
                    f"{ref_ms} | {speedup} | {size / fused:>11,.0f} | {cpu[share] * 1e3:>6.2f} | "
                    f"{cpu[share] / cpu[shares[0]]:>11.2f}x | {report.invalid_rows:>7,} | "
                    f"{report.failure_cases.height:>6,} |"
                    + (
                        f" {before[share][0] * 1e3:>7.2f} | {fused / before[share][0]:>6.2f}x | "
                        f"{before[share][1] * 1e3:>8.2f} | {cpu[share] / before[share][1]:>10.2f}x | "
                        f"{before[share][1] / before[shares[0]][1]:>16.2f}x |"
                        if before
                        else ""
                    )
                )


if __name__ == "__main__":
    main()
