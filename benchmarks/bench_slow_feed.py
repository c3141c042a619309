"""A worker on a slow feed: batch size, CPU per record and latency, with batches that fill vs the bare poll.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_slow_feed.py [--rate 300] [--records 3000] [--repeat 2]

Uses the broker in ``KAFKA_BOOTSTRAP_SERVERS``, else starts one. Per run, a fresh one-partition topic;
a :class:`~streams.kafka.worker.BatchWorker` (``--mode``, ``batch_max_latency_ms`` 200, the example
feature contract) in a child process; the parent produces ``--records`` feature records at a fixed
``--rate`` (one ``send`` each, ``linger_ms`` 0) once the worker owns the partition. Two variants,
alternating, ``--repeat`` runs each:

* ``before``: ``AIOKafkaTransport.poll`` replaced by ``AIOKafkaTransport.fetch`` in the child: one
  ``getmany`` per poll, which is the poll before batches filled, verbatim;
* ``after``: the poll of this tree (fetching until the latency bound or a full batch).

Reported per variant (median over runs): batches, mean records per batch, worker CPU per record
(process CPU time between the first and the last commit, idle polling included, divided by the
records in between) and latency per record, from the producer's send to the commit of its offset
(p50/p99; both clocks are this machine's wall clock).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONTRACT = ROOT / "contracts" / "card_transactions.odcs.yaml"


# --- child: the worker ----------------------------------------------------------------------------------


async def worker_child(bootstrap: str, topic: str, records: int, mode: str, variant: str) -> dict[str, Any]:
    from streams.kafka.aiokafka_transport import AIOKafkaTransport
    from streams.kafka.observers import WorkerObserver
    from streams.kafka.worker import BatchWorker, build_bindings, tune_gc
    from streams.settings import Mode, Settings

    if variant == "before":
        AIOKafkaTransport.poll = AIOKafkaTransport.fetch  # type: ignore[method-assign]

    class Log(WorkerObserver):
        def __init__(self) -> None:
            self.sizes: list[int] = []
            self.commits: list[tuple[float, int, float]] = []  # (wall time, next offset, process CPU)

        def on_batch_end(self, tp: Any, binding: Any, messages: int, result: Any, lag: int | None) -> None:
            self.sizes.append(messages)

        def on_commit(self, tp: Any, next_offset: int, latency: float) -> None:
            self.commits.append((time.time(), next_offset, time.process_time()))

    with tempfile.TemporaryDirectory() as tmp:
        text = CONTRACT.read_text().replace("physicalName: features.card-transactions.v1", f"physicalName: {topic}")
        (Path(tmp) / "c.odcs.yaml").write_text(text)
        settings = Settings(
            bootstrap_servers=bootstrap, contracts_dir=Path(tmp), app_id=f"slow-{uuid.uuid4().hex}",
            mode=Mode.GATE if mode == "eos" else Mode(mode), exactly_once=mode == "eos",
            events_topic=f"{topic}.events", batch_max_latency_ms=200, web_port=0, topic_partitions=1,
        )  # fmt: skip
        log = Log()
        worker = BatchWorker(settings, build_bindings(settings), worker_id="slow", observers=[log])
        tune_gc()
        task = asyncio.create_task(worker.run())
        while not worker._owned:
            if task.done():
                await task
            await asyncio.sleep(0.02)
        print("ready", flush=True)
        while sum(worker.committed.values()) < records:
            if task.done():
                await task
            await asyncio.sleep(0.01)
        worker.stop()
        await task
    return {"sizes": log.sizes, "commits": log.commits}


# --- parent: the feed -----------------------------------------------------------------------------------


async def feed(bootstrap: str, topic: str, records: int, rate: float) -> list[float]:
    """Send ``records`` at ``rate``/s; the wall time each offset was sent at."""
    import orjson
    from aiokafka import AIOKafkaProducer

    from streams.testing import generate_feature_records

    values = [orjson.dumps(r) for r in generate_feature_records(records, seed=5).records]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=1)
    await producer.start()
    sent: dict[int, float] = {}
    try:
        loop = asyncio.get_running_loop()
        start, futures = loop.time(), []
        for i, value in enumerate(values):
            await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
            at = time.time()
            futures.append((at, await producer.send(topic, value, key=str(i).encode())))
        for at, future in futures:
            sent[(await future).offset] = at
    finally:
        await producer.stop()
    return [sent[o] for o in sorted(sent)]


def one_run(bootstrap: str, records: int, rate: float, mode: str, variant: str) -> dict[str, float]:
    from kafka.admin import KafkaAdminClient, NewTopic  # type: ignore[import-untyped,unused-ignore]

    topic = f"bench-slow-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    cmd = [sys.executable, __file__, "--child", variant, "--bootstrap", bootstrap, "--topic", topic,
           "--records", str(records), "--mode", mode]  # fmt: skip
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    while (line := child.stdout.readline()) and line.strip() != "ready":
        pass
    sent = asyncio.run(feed(bootstrap, topic, records, rate))
    out, _ = child.communicate(timeout=600)
    if child.returncode != 0:
        raise SystemExit(f"{variant} worker failed (exit {child.returncode})")
    result = json.loads([x for x in out.splitlines() if x.startswith("{")][-1])
    commits, sizes = result["commits"], result["sizes"]
    latencies, done = [], 0
    for wall, next_offset, _ in commits:
        latencies += [wall - sent[o] for o in range(done, min(next_offset, len(sent)))]
        done = max(done, next_offset)
    (_, first_offset, cpu0), (_, last_offset, cpu1) = commits[0], commits[-1]
    q = statistics.quantiles(latencies, n=100)
    return {
        "batches": len(sizes), "mean batch": statistics.mean(sizes),
        "cpu us/record": (cpu1 - cpu0) / max(last_offset - first_offset, 1) * 1e6,
        "p50 ms": q[49] * 1e3, "p99 ms": q[98] * 1e3,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=300.0)
    ap.add_argument("--records", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--mode", default="gate", choices=("monitor", "gate", "eos"))
    ap.add_argument("--child", choices=("before", "after"), help=argparse.SUPPRESS)
    ap.add_argument("--bootstrap", help=argparse.SUPPRESS)
    ap.add_argument("--topic", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        result = asyncio.run(worker_child(args.bootstrap, args.topic, args.records, args.mode, args.child))
        print(json.dumps(result))
        return
    import logging

    logging.basicConfig(level=logging.ERROR)
    from streams.dev.broker import kafka_bootstrap

    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    with kafka_bootstrap() as bootstrap:
        for _ in range(args.repeat):
            for variant, results in runs.items():
                results.append(one_run(bootstrap, args.records, args.rate, args.mode, variant))
                print(variant, {k: round(v, 1) for k, v in results[-1].items()}, flush=True)
    keys = list(runs["after"][0])
    print(f"\n{args.mode} mode, {args.records:,} records at {args.rate:g}/s, batch_max_latency_ms 200, "
          f"median of {args.repeat} runs per variant (alternating)")  # fmt: skip
    print("| variant | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for variant, results in runs.items():
        print(f"| {variant} | " + " | ".join(f"{statistics.median(r[k] for r in results):.1f}" for k in keys) + " |")


if __name__ == "__main__":
    main()
