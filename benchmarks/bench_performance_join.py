"""The labels join's cost per record, next to decoding the same records with orjson (the floor of any join).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_performance_join.py [--predictions 50000] [--runs 5]

Generates ``--predictions`` predictions over an hour of two model versions with their labels
(``tests/unit/performance/scenario.py``: 90% labelled within -10 s..400 s, 5% duplicates, 1% orphans; about
two records per prediction), then, ``--runs`` times round-robin in this one process: ``orjson.loads`` of every
record value (baseline), and the pure :class:`~streams.performance.joiner.PerformanceJoiner` over the same
records in polls of 2,000 with its state records taken after each poll (what the runner produces in one
transaction). Prints medians: records/s of each and the join/decode ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import orjson

from tests.unit.performance.scenario import generate
from tests.unit.performance.test_joiner import Clock, make_joiner


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--predictions", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    data = generate(seed=5, n=args.predictions, span_s=3600, orphans=args.predictions // 100)
    messages = data.messages
    decode, join, states = [], [], 0
    for _ in range(args.runs):
        t = time.perf_counter()
        for m in messages:
            orjson.loads(m.value or b"null")
        decode.append(time.perf_counter() - t)
        clock = Clock()
        joiner = make_joiner(clock)
        t = time.perf_counter()
        for i in range(0, len(messages), 2000):
            for m in messages[i : i + 2000]:
                joiner.handle(m)
            joiner.tick()
            states += len(joiner.state_records("state"))
        join.append(time.perf_counter() - t)
    n = len(messages)
    d, j = statistics.median(decode), statistics.median(join)
    print(f"{n:,} records ({args.predictions:,} predictions), medians of {args.runs}")
    print(f"decode (orjson.loads): {n / d:12,.0f} records/s")
    print(f"join (PerformanceJoiner): {n / j:9,.0f} records/s  ({j / d:.1f}x decode)  "
          f"{states / args.runs / n:.2f} state records per input record")  # fmt: skip


if __name__ == "__main__":
    main()
