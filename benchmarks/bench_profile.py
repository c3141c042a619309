"""Profiling cost per batch next to validation cost of the same batch, and the sketch choice.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_profile.py [--sizes 10000,100000] [--repeat 7]

On ``contracts/card_transactions.odcs.yaml`` with generated records (``streams.testing``):

1. per batch size: the median time of ``CompiledPlan.validate`` (the fused engine, compiled once as
   in a worker; ``Contract.validate`` compiles on every call and is shown too), of
   ``profile_frame`` with the reference's spec (every profiled field), of merging two batch
   profiles, and of encoding one; the target is profiling <= 50% of the validation time;
2. the sketch choice, per numeric value: a DataSketches KLL update (vectorised, k=200, the values copied out
   to numpy included) against the reference-binned histogram, both the bins alone (the values sorted and
   searched at the reference edges, as :mod:`streams.profiles.kernels` does) and the whole numeric profile of
   that field (bins, moments, tails); and the merge of two of each.

Every figure is a median of ``--repeat`` runs in the same process, the compared functions run
round-robin; ratios are what to compare.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import polars as pl

from streams.contracts.loader import load_contract
from streams.profiles.codec import encode_profile
from streams.profiles.profile import profile_frame
from streams.profiles.reference import build_reference
from streams.profiles.spec import Kind
from streams.testing import generate_feature_frame
from streams.validation.engine import compile_plan

CONTRACT = Path(__file__).resolve().parents[1] / "contracts" / "card_transactions.odcs.yaml"


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    return interleaved({"fn": fn}, repeat)["fn"]


def interleaved(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median seconds of each function, run round-robin so that a changing machine load hits all alike."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    contract = load_contract(CONTRACT)
    plan = compile_plan(contract)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "reference.parquet"
        generate_feature_frame(max(sizes), seed=100).write_parquet(data)
        reference = build_reference(contract, None, [data])
    spec = reference.spec
    numeric = [f for f in spec.fields if f.kind is Kind.NUMERIC]
    print(
        f"contract {contract.ref}: {len(contract.schema().fields)} fields, {len(contract.schema().rules)} rules; "
        f"profiled {len(spec.fields)} fields ({len(numeric)} numeric, {len(spec.fields) - len(numeric)} categorical); "
        f"polars {pl.__version__}; median of {args.repeat}"
    )
    numeric_only = replace(spec, fields=tuple(f for f in spec.fields if f.kind is Kind.NUMERIC))
    categorical_only = replace(spec, fields=tuple(f for f in spec.fields if f.kind is Kind.CATEGORICAL))
    print(
        f"{'rows':>8} {'validate ms':>12} {'Contract.validate ms':>21} {'profile ms':>11} {'profile/validate':>17} "
        f"{'numeric ms':>11} {'categorical ms':>15} {'merge ms':>9} {'encode ms':>10} {'bytes':>7}"
    )
    for n in sizes:
        df = generate_feature_frame(n, seed=n)
        other = generate_feature_frame(n, seed=n + 1)
        t = interleaved(
            {
                "validate": lambda df=df: plan.validate(df),
                "contract": lambda df=df: contract.validate(df),
                "profile": lambda df=df: profile_frame(df, spec),
                "numeric": lambda df=df: profile_frame(df, numeric_only),
                "categorical": lambda df=df: profile_frame(df, categorical_only),
            },
            args.repeat,
        )
        t_validate, t_contract, t_profile, t_num, t_cat = (
            t[k] for k in ("validate", "contract", "profile", "numeric", "categorical")
        )
        a, b = profile_frame(df, spec), profile_frame(other, spec)
        t_merge = median_seconds(lambda a=a, b=b: a.merge(b), args.repeat * 5)
        t_encode = median_seconds(lambda a=a: encode_profile(a), args.repeat * 5)
        print(
            f"{n:>8,} {t_validate * 1e3:>12.1f} {t_contract * 1e3:>21.1f} {t_profile * 1e3:>11.1f} "
            f"{t_profile / t_validate:>16.0%} {t_num * 1e3:>11.1f} {t_cat * 1e3:>15.1f} {t_merge * 1e3:>9.3f} "
            f"{t_encode * 1e3:>10.3f} {len(encode_profile(a)):>7,}"
        )
    sketch_choice(spec, sizes, args.repeat)


def sketch_choice(spec: object, sizes: list[int], repeat: int) -> None:
    import datasketches

    from streams.profiles.spec import ProfileSpec

    assert isinstance(spec, ProfileSpec)
    field = spec.field("amount_eur")
    print(f"\nsketch choice on amount_eur ({len(field.edges) + 1} reference bins vs KLL k=200), per value:")
    print(f"{'rows':>8} {'KLL update ns':>14} {'bins ns':>8} {'field profile ns':>17} {'KLL merge us':>13} "
          f"{'hist merge us':>14} {'KLL bytes':>10} {'hist bytes':>11}")  # fmt: skip
    edges = np.asarray(field.edges)
    for n in sizes:
        df = generate_feature_frame(n, seed=n).select("amount_eur")

        def kll(df=df) -> object:
            sketch = datasketches.kll_doubles_sketch(200)
            sketch.update(df["amount_eur"].to_numpy(writable=True))
            return sketch

        def bins(df=df) -> object:
            values = df["amount_eur"].to_numpy()
            run = np.sort(values[~np.isnan(values)])
            return np.diff(np.searchsorted(run, edges, side="right"), prepend=0, append=len(run))

        one = spec_only(spec, "amount_eur")

        def hist(df=df, one=one) -> object:
            return profile_frame(df, one)

        both = interleaved({"kll": kll, "bins": bins, "hist": hist}, repeat)
        t_kll, t_bins, t_hist = both["kll"], both["bins"], both["hist"]
        k1, k2 = kll(), kll()
        h1 = profile_frame(df, spec_only(spec, "amount_eur")).numeric("amount_eur")

        def kll_merge(k1=k1, k2=k2) -> object:
            merged = datasketches.kll_doubles_sketch(200)
            merged.merge(k1)
            merged.merge(k2)
            return merged

        t_kll_merge = median_seconds(kll_merge, repeat * 5)
        t_hist_merge = median_seconds(lambda h1=h1: h1.merge(h1), repeat * 5)
        kll_bytes = len(k1.serialize())  # type: ignore[attr-defined]
        hist_bytes = len(orjson.dumps(h1.as_dict()))
        print(
            f"{n:>8,} {t_kll / n * 1e9:>14.1f} {t_bins / n * 1e9:>8.1f} {t_hist / n * 1e9:>17.1f} "
            f"{t_kll_merge * 1e6:>13.1f} {t_hist_merge * 1e6:>14.1f} {kll_bytes:>10,} {hist_bytes:>11,}"
        )


def spec_only(spec: object, name: str) -> object:
    from streams.profiles.spec import ProfileSpec

    assert isinstance(spec, ProfileSpec)
    return replace(spec, fields=(spec.field(name),))


if __name__ == "__main__":
    main()
