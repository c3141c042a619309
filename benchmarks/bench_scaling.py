"""CPU per record of the worker's pure pipeline per record size and contract size (no Kafka), for docs/scaling.md.

    .venv/bin/python benchmarks/bench_scaling.py [--batch 5000] [--batches 20] [--modes gate,monitor]
    .venv/bin/python benchmarks/bench_scaling.py --baseline DIR [--rounds 3]   # old code in DIR vs this tree

For each example contract (features: ``card_transactions``, 24 fields, ~671-byte records; predictions:
``fraud_predictions``, 9 fields, ~300-byte records), ``--batches`` batches of ``--batch`` messages
(``streams.testing`` generators, 1% faulty) go through one :class:`~streams.pipeline.binding.Binding` per mode
(``--modes``: gate, monitor), as the worker calls it (decode, validate, route, outputs built; stream time off,
batch events off). Prints the median wall time per batch, wall and CPU microseconds per record (CPU: every thread of
the process, polars' included; it holds on a shared, noisy machine where wall time does not), records/s, and the
ratio of the two contracts. The worker's end-to-end rate adds the Kafka client and the event loop
(``bench_worker.py``, and ``bench_clients.py`` for the client alone); stream time adds ``bench_stream_time.py``'s
stage.

With ``--baseline DIR`` (a checkout of older code, e.g. ``git archive`` of a commit), each round runs this script
once under DIR and once under this tree, alternating, and prints the median CPU microseconds per record of each
contract and mode side by side with their ratio (this / baseline: below 1 is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(os.environ.get("BENCH_SCALING_ROOT") or Path(__file__).resolve().parents[1])  # --baseline: the tree run
sys.path.insert(0, str(ROOT))


def measure(
    contract_file: str, generate: Any, batch: int, batches: int, faults: dict[str, float], mode: str = "gate"
) -> dict[str, Any]:
    from streams.contracts.loader import load_contract
    from streams.pipeline.binding import Binding
    from streams.settings import Mode, Settings
    from streams.testing import make_messages

    contract = load_contract(ROOT / "contracts" / contract_file)
    schema = contract.schema(None)
    topic = schema.topic
    binding = Binding(contract, schema, Settings(mode=Mode(mode), batch_events=False, stream_time=False))
    runs: list[list[Any]] = []
    size = 0
    for i in range(batches + 1):
        records = generate(batch, seed=i, faults=faults).records
        messages = make_messages(records, topic, start_offset=i * batch)
        size += sum(len(m.value or b"") for m in messages)
        runs.append(messages)
    binding.process(runs[0], worker_id="bench")  # warm-up (compilation caches, first allocations)
    times, cpus = [], []
    for messages in runs[1:]:
        t0, c0 = time.perf_counter(), time.process_time()
        binding.process(messages, worker_id="bench")
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    per_batch, cpu = statistics.median(times), statistics.median(cpus)
    mean_bytes = size / (batch * (batches + 1))
    return {"fields": len(schema.fields), "rules": len(schema.rules), "bytes": mean_bytes, "ms": per_batch * 1000,
            "us": per_batch / batch * 1e6, "cpu_us": cpu / batch * 1e6, "rate": batch / per_batch}  # fmt: skip


def run(batch: int, batches: int, modes: list[str]) -> dict[str, dict[str, Any]]:
    """``contract/mode`` -> its figures (:func:`measure`)."""
    from streams.testing import generate_feature_records, generate_prediction_records

    data = {
        "features": ("card_transactions.odcs.yaml", generate_feature_records, {"out_of_range": 0.005,
                                                                             "invalid_enum": 0.005}),
        "predictions": ("fraud_predictions.odcs.yaml", generate_prediction_records, {"out_of_range": 0.01}),
    }  # fmt: skip
    return {
        f"{name}/{mode}": measure(file, generate, batch, batches, faults, mode)
        for mode in modes
        for name, (file, generate, faults) in data.items()
    }


def compare(args: argparse.Namespace) -> None:
    """This tree against ``args.baseline``, alternating runs, medians of CPU µs per record."""
    trees = {"baseline": args.baseline.resolve(), "this": Path(__file__).resolve().parents[1]}
    got: dict[str, list[dict[str, dict[str, Any]]]] = {k: [] for k in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            cmd = [sys.executable, str(Path(__file__).resolve()), "--json", "--batch", str(args.batch), "--batches",
                   str(args.batches), "--modes", args.modes]  # fmt: skip
            env = os.environ | {"PYTHONPATH": str(tree), "BENCH_SCALING_ROOT": str(tree)}
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            got[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"batch {args.batch}, 1% faulty; CPU µs per record, median of {args.rounds} alternating runs "
          f"(each the median of {args.batches} batches)")  # fmt: skip
    print(f"| {'contract/mode':<21} | {'baseline':>9} | {'this':>9} | {'ratio':>6} |")
    print(f"|{'-' * 23}|{'-' * 11}|{'-' * 11}|{'-' * 8}|")
    for key in got["this"][0]:
        old = statistics.median(r[key]["cpu_us"] for r in got["baseline"])
        new = statistics.median(r[key]["cpu_us"] for r in got["this"])
        print(f"| {key:<21} | {old:>9.2f} | {new:>9.2f} | {new / old:>6.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--modes", default="gate,monitor", help="comma-separated: gate, monitor")
    parser.add_argument("--json", action="store_true", help="print one JSON line (used with --baseline)")
    parser.add_argument("--baseline", type=Path, help="a checkout of older code to run alternately with this tree")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.baseline is not None:
        compare(args)
        return
    rows = run(args.batch, args.batches, args.modes.split(","))
    if args.json:
        print(json.dumps(rows))
        return
    print(f"batch {args.batch}, median of {args.batches} batches, 1% faulty")
    heads = ("contract/mode".ljust(19), "fields", "rules", "bytes/rec", "ms/batch", "us/rec", "CPU us/rec", "rec/s")
    print("| " + " | ".join(heads) + " |")
    print("|" + "|".join("-" * (len(h) + 2) for h in heads) + "|")
    for name, r in rows.items():
        cells: list[Any] = [name, r["fields"], r["rules"], f"{r['bytes']:.0f}", f"{r['ms']:.1f}"]
        cells += [f"{r['us']:.1f}", f"{r['cpu_us']:.1f}", f"{r['rate']:,.0f}"]
        print("| " + " | ".join(str(c).rjust(len(h)) for c, h in zip(cells, heads, strict=True)) + " |")
    for mode in args.modes.split(","):
        f, p = rows[f"features/{mode}"], rows[f"predictions/{mode}"]
        print(f"{mode}: features / predictions per record: {f['us'] / p['us']:.2f}x wall, "
              f"{f['cpu_us'] / p['cpu_us']:.2f}x CPU")  # fmt: skip


if __name__ == "__main__":
    main()
