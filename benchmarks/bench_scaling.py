"""CPU per record of the worker's pure pipeline per record size and contract size (no Kafka), for docs/scaling.md.

    .venv/bin/python benchmarks/bench_scaling.py [--batch 5000] [--batches 20]

For each example contract (features: ``card_transactions``, 24 fields, ~671-byte records; predictions:
``fraud_predictions``, 9 fields, ~300-byte records), ``--batches`` batches of ``--batch`` messages
(``streams.testing`` generators, 1% faulty) go through one :class:`~streams.pipeline.binding.Binding` in gate
mode, as the worker calls it (decode, validate, route, outputs built; stream time off, batch events off).
Prints the median wall time per batch, wall and CPU microseconds per record (CPU: every thread of the process,
polars' included; it holds on a shared, noisy machine where wall time does not), records/s, and the ratio of
the two contracts. The worker's end-to-end rate adds the Kafka client and the event loop (``bench_worker.py``, and
``bench_clients.py`` for the client alone); stream time adds ``bench_stream_time.py``'s stage.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure(contract_file: str, generate: Any, batch: int, batches: int, faults: dict[str, float]) -> dict[str, Any]:
    from streams.contracts.loader import load_contract
    from streams.pipeline.binding import Binding
    from streams.settings import Mode, Settings
    from streams.testing import make_messages

    contract = load_contract(ROOT / "contracts" / contract_file)
    schema = contract.schema(None)
    topic = schema.topic
    binding = Binding(contract, schema, Settings(mode=Mode.GATE, batch_events=False, stream_time=False))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    from streams.testing import generate_feature_records, generate_prediction_records

    rows = {
        "features": measure("card_transactions.odcs.yaml", generate_feature_records, args.batch, args.batches,
                            {"out_of_range": 0.005, "invalid_enum": 0.005}),
        "predictions": measure("fraud_predictions.odcs.yaml", generate_prediction_records, args.batch, args.batches,
                               {"out_of_range": 0.01}),
    }  # fmt: skip
    print(f"batch {args.batch}, median of {args.batches} batches, gate mode, 1% faulty")
    heads = ("contract", "fields", "rules", "bytes/rec", "ms/batch", "us/rec", "CPU us/rec", "rec/s")
    print("| " + " | ".join(heads) + " |")
    print("|" + "|".join("-" * (len(h) + 2) for h in heads) + "|")
    for name, r in rows.items():
        cells: list[Any] = [name, r["fields"], r["rules"], f"{r['bytes']:.0f}", f"{r['ms']:.1f}"]
        cells += [f"{r['us']:.1f}", f"{r['cpu_us']:.1f}", f"{r['rate']:,.0f}"]
        print("| " + " | ".join(str(c).rjust(len(h)) for c, h in zip(cells, heads, strict=True)) + " |")
    f, p = rows["features"], rows["predictions"]
    print(f"features / predictions per record: {f['us'] / p['us']:.2f}x wall, {f['cpu_us'] / p['cpu_us']:.2f}x CPU")


if __name__ == "__main__":
    main()
