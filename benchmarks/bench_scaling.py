"""CPU per record of the worker's pure pipeline per record size and contract size (no Kafka), for docs/scaling.md.

    .venv/bin/python benchmarks/bench_scaling.py [--batch 5000] [--batches 20] [--modes gate,monitor]
    .venv/bin/python benchmarks/bench_scaling.py --baseline DIR [--rounds 3]   # old code in DIR vs this tree

For each example contract (features: ``card_transactions``, 24 fields, ~671-byte records; predictions:
``fraud_predictions``, 9 fields, ~300-byte records), ``--batches`` batches of ``--batch`` messages
(``streams.testing`` generators, 1% faulty) go through one :class:`~streams.pipeline.binding.Binding` per mode
(``--modes``: gate, monitor), as the worker calls it (decode, validate, route, outputs built; stream time off,
batch events off; the worker's collector settings, ``tune_gc``). Prints the median wall time per batch, wall and
CPU microseconds per record (CPU: every thread of the process, polars' included; it holds on a shared, noisy machine
where wall time does not), records/s, and the ratio of the two contracts. The worker's end-to-end rate adds the
Kafka client and the event loop (``bench_worker.py``, and ``bench_clients.py`` for the client alone); stream time
adds ``bench_stream_time.py``'s stage.

With ``--baseline DIR`` (a checkout of older code, e.g. ``git archive`` of a commit), this script runs once under DIR
and once under this tree, as two children that take turns batch by batch (who goes first alternates), so that both
see the same load on a shared machine; it prints the median CPU microseconds per batch record of each contract and
mode side by side with their ratio (this / baseline: below 1 is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(os.environ.get("BENCH_SCALING_ROOT") or Path(__file__).resolve().parents[1])  # --baseline: the tree run
sys.path.insert(0, str(ROOT))


DATA = {  # name -> contract file, generator (streams.testing), faults
    "features": ("card_transactions.odcs.yaml", "generate_feature_records", {"out_of_range": 0.005,
                                                                           "invalid_enum": 0.005}),
    "predictions": ("fraud_predictions.odcs.yaml", "generate_prediction_records", {"out_of_range": 0.01}),
}  # fmt: skip


class Case:
    """One contract in one mode: its binding and ``batches + 1`` batches (the first a warm-up, processed here)."""

    def __init__(self, name: str, mode: str, batch: int, batches: int) -> None:
        import streams.testing as testing
        from streams.contracts.loader import load_contract
        from streams.pipeline.binding import Binding
        from streams.settings import Mode, Settings

        contract_file, generator, faults = DATA[name]
        contract = load_contract(ROOT / "contracts" / contract_file)
        self.schema = schema = contract.schema(None)
        self.binding = Binding(contract, schema, Settings(mode=Mode(mode), batch_events=False, stream_time=False))
        generate = getattr(testing, generator)
        self.runs = [
            testing.make_messages(generate(batch, seed=i, faults=faults).records, schema.topic, start_offset=i * batch)
            for i in range(batches + 1)
        ]
        self.bytes = sum(len(m.value or b"") for ms in self.runs for m in ms) / (batch * (batches + 1))
        self.binding.process(self.runs[0], worker_id="bench")  # warm-up (compilation caches, first allocations)

    def time(self, i: int) -> tuple[float, float]:
        """Wall and CPU seconds of batch ``i`` (from 1)."""
        t0, c0 = time.perf_counter(), time.process_time()
        self.binding.process(self.runs[i], worker_id="bench")
        return time.perf_counter() - t0, time.process_time() - c0


def _tune_gc() -> None:
    """The worker's collector settings (``BatchWorker`` calls ``tune_gc`` at start): the batches built here frozen as
    start-up state, fewer generation-0 collections. Without them, a collection walks every batch held here."""
    from streams.kafka.batches import tune_gc

    tune_gc()


def run(batch: int, batches: int, modes: list[str]) -> dict[str, dict[str, Any]]:
    """``contract/mode`` -> its figures: medians over the batches."""
    rows = {}
    for mode in modes:
        for name in DATA:
            case = Case(name, mode, batch, batches)
            _tune_gc()
            walls, cpus = zip(*(case.time(i) for i in range(1, batches + 1)), strict=True)
            per_batch, cpu = statistics.median(walls), statistics.median(cpus)
            rows[f"{name}/{mode}"] = {
                "fields": len(case.schema.fields), "rules": len(case.schema.rules), "bytes": case.bytes,
                "ms": per_batch * 1000, "us": per_batch / batch * 1e6, "cpu_us": cpu / batch * 1e6,
                "rate": batch / per_batch,
            }  # fmt: skip
    return rows


def serve(batch: int, batches: int, modes: list[str]) -> None:
    """``--baseline``'s child: every case built, then one batch timed per request (``case index`` on stdin, its CPU
    seconds on stdout), so that the two trees take turns batch by batch under the same load."""
    cases = {f"{name}/{mode}": Case(name, mode, batch, batches) for mode in modes for name in DATA}
    _tune_gc()
    print("ready", flush=True)
    for line in sys.stdin:
        key, i = line.split()
        print(cases[key].time(int(i))[1], flush=True)


def compare(args: argparse.Namespace) -> None:
    """This tree against ``args.baseline``: one child each, taking turns batch by batch (who goes first alternates),
    medians of CPU µs per record over ``rounds`` x ``batches`` batches."""
    trees = {"baseline": args.baseline.resolve(), "this": Path(__file__).resolve().parents[1]}
    children = {}
    for name, tree in trees.items():
        cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", "--batch", str(args.batch), "--batches",
               str(args.batches), "--modes", args.modes]  # fmt: skip
        env = os.environ | {"PYTHONPATH": str(tree), "BENCH_SCALING_ROOT": str(tree)}
        children[name] = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        for child in children.values():
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        keys = [f"{name}/{mode}" for mode in args.modes.split(",") for name in DATA]
        got: dict[str, dict[str, list[float]]] = {t: {k: [] for k in keys} for t in trees}
        turn = 0
        for _ in range(args.rounds):
            for key in keys:
                for i in range(1, args.batches + 1):
                    turn += 1
                    for name in trees if turn % 2 else reversed(trees):
                        child = children[name]
                        assert child.stdin is not None and child.stdout is not None
                        child.stdin.write(f"{key} {i}\n")
                        child.stdin.flush()
                        got[name][key].append(float(child.stdout.readline()))
    finally:
        for child in children.values():
            if child.stdin is not None:
                child.stdin.close()
            child.wait(timeout=60)
    print(f"batch {args.batch}, 1% faulty; CPU µs per record, median of {args.rounds} x {args.batches} batches, "
          "the two trees taking turns batch by batch")  # fmt: skip
    print(f"| {'contract/mode':<21} | {'baseline':>9} | {'this':>9} | {'ratio':>6} |")
    print(f"|{'-' * 23}|{'-' * 11}|{'-' * 11}|{'-' * 8}|")
    for key in keys:
        old = statistics.median(got["baseline"][key]) / args.batch * 1e6
        new = statistics.median(got["this"][key]) / args.batch * 1e6
        print(f"| {key:<21} | {old:>9.2f} | {new:>9.2f} | {new / old:>6.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--modes", default="gate,monitor", help="comma-separated: gate, monitor")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # --baseline's child
    parser.add_argument("--baseline", type=Path, help="a checkout of older code to run alternately with this tree")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    modes = args.modes.split(",")
    if args.serve:
        serve(args.batch, args.batches, modes)
        return
    if args.baseline is not None:
        compare(args)
        return
    rows = run(args.batch, args.batches, modes)
    print(f"batch {args.batch}, median of {args.batches} batches, 1% faulty")
    heads = ("contract/mode".ljust(19), "fields", "rules", "bytes/rec", "ms/batch", "us/rec", "CPU us/rec", "rec/s")
    print("| " + " | ".join(heads) + " |")
    print("|" + "|".join("-" * (len(h) + 2) for h in heads) + "|")
    for name, r in rows.items():
        cells: list[Any] = [name, r["fields"], r["rules"], f"{r['bytes']:.0f}", f"{r['ms']:.1f}"]
        cells += [f"{r['us']:.1f}", f"{r['cpu_us']:.1f}", f"{r['rate']:,.0f}"]
        print("| " + " | ".join(str(c).rjust(len(h)) for c, h in zip(cells, heads, strict=True)) + " |")
    for mode in modes:
        f, p = rows[f"features/{mode}"], rows[f"predictions/{mode}"]
        print(f"{mode}: features / predictions per record: {f['us'] / p['us']:.2f}x wall, "
              f"{f['cpu_us'] / p['cpu_us']:.2f}x CPU")  # fmt: skip


if __name__ == "__main__":
    main()
