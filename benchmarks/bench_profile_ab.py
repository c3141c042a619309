"""Window profiling (``slice_fields``: every window slice of a batch, all profiled fields) now and in a baseline
checkout, on the same batches in round robin, next to the engine's validation of each batch.

    git archive <base> | tar -x -C /tmp/base
    PYTHONPATH=. .venv/bin/python benchmarks/bench_profile_ab.py --baseline /tmp/base [--sizes 10000,100000] \
        [--batches 9] [--rounds 3]

The batches are those of ``bench_window_profiles.py`` (card contract, reference of 100,000 generated records,
3 source partitions interleaved: 3 window slices per batch). Each round validates a batch, then profiles it with
the baseline's ``streams/profiles/kernels.py`` (loaded from ``--baseline`` beside this checkout's other modules)
and with this checkout's, alternating which goes first; every profile of both is checked to be the same within
the documented rounding (counts, bins and categories exactly). Reported: medians over batches x rounds of CPU
time (``time.process_time``: every thread of the process, polars' pool included; less blurred by other processes
than wall time on a shared machine) and of the per-call ratio to that round's validation.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
from bench_window_profiles import card_monitor

from streams.contracts.loader import load_contract
from streams.profiles import kernels
from streams.profiles.fields import NumericProfile
from streams.testing import generate_feature_frame
from streams.validation.engine import compile_plan

CONTRACT = Path(__file__).resolve().parents[1] / "contracts" / "card_transactions.odcs.yaml"
PARTITIONS = 3


def load_baseline(root: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("baseline_kernels", root / "streams" / "profiles" / "kernels.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_kernels"] = module
    spec.loader.exec_module(module)
    return module


def close(a: dict, b: dict) -> None:
    for name, p in a.items():
        q = b[name]
        if isinstance(p, NumericProfile):
            assert (p.count, p.nulls, p.min, p.max, p.hist, p.below) == (q.count, q.nulls, q.min, q.max, q.hist,
                                                                           q.below), name  # fmt: skip
            for attr in ("mean", "m2", "below_gap", "above_gap"):
                assert math.isclose(getattr(p, attr), getattr(q, attr), rel_tol=1e-9, abs_tol=1e-9), (name, attr)
        else:
            assert p == q, name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", type=Path, required=True, help="a checkout (git archive) of the baseline")
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--batches", type=int, default=9)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    base = load_baseline(args.baseline)
    contract = load_contract(CONTRACT)
    compiled = compile_plan(contract)
    monitor = card_monitor(contract)
    spec = monitor.spec
    print(f"{len(spec.fields)} profiled fields, {PARTITIONS} interleaved slices per batch; medians of "
          f"{args.batches} batches x {args.rounds} rounds; baseline {args.baseline}")  # fmt: skip
    print(f"{'rows':>8} {'validate ms':>12} {'baseline ms':>12} {'of validate':>12} {'new ms':>8} "
          f"{'of validate':>12} {'new / baseline':>15}")  # fmt: skip
    for n in (int(s) for s in args.sizes.split(",")):
        pool = generate_feature_frame(n, seed=n)
        ids = np.arange(n, dtype=np.int64) % PARTITIONS
        t: dict[str, list[float]] = {"validate": [], "base": [], "new": [], "rb": [], "rn": [], "nb": []}
        for i in range(args.batches + 1):
            frame = generate_feature_frame(n, seed=n + i) if i else pool
            conformed = compiled.conform(frame)
            for r in range(args.rounds):
                t0 = time.process_time()
                compiled.validate(frame)
                v = time.process_time() - t0
                spent = {}
                for which in ("base", "new") if r % 2 else ("new", "base"):
                    module = base if which == "base" else kernels
                    t0 = time.process_time()
                    out = module.slice_fields(conformed, spec, ids, PARTITIONS)
                    spent[which] = time.process_time() - t0
                    if which == "base":
                        old = out
                    else:
                        new = out
                for a, b in zip(new, old, strict=True):
                    close(a, b)
                if i == 0:
                    continue  # warm-up
                t["validate"].append(v)
                t["base"].append(spent["base"])
                t["new"].append(spent["new"])
                t["rb"].append(spent["base"] / v)
                t["rn"].append(spent["new"] / v)
                t["nb"].append(spent["new"] / spent["base"])
        med = {k: statistics.median(x) for k, x in t.items()}
        print(f"{n:>8,} {med['validate'] * 1e3:>12.1f} {med['base'] * 1e3:>12.1f} {med['rb']:>11.0%} "
              f"{med['new'] * 1e3:>8.1f} {med['rn']:>11.0%} {med['nb']:>14.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
