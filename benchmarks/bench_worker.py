"""Throughput of the stream worker against a real broker, next to raw aiokafka loops.

    .venv/bin/python benchmarks/bench_worker.py [--records 500000] [--partitions 4] [--batch 5000]
        [--data card|predictions] [--decoders bulk,message]

Uses the broker in ``KAFKA_BOOTSTRAP_SERVERS``, else starts one (``streams.dev.broker``).
Pre-produces ``--records`` feature records of ``contracts/card_transactions.odcs.yaml``
(``streams.testing.generate_feature_records``, 1% faulty) onto a fresh topic with
``--partitions`` partitions, then runs, each in its own process (clean peak RSS) and
consumer group, until every record is consumed:

* ``raw``: aiokafka ``getmany`` + ``json.loads`` per value (the baseline);
* ``copy``: raw consume -> produce loop (``create_batch``/``send_batch`` per partition,
  idempotent producer, commit after ack), i.e. forwarding without validation;
* ``monitor`` / ``gate``: :class:`streams.kafka.worker.BatchWorker` in that mode;
* ``eos``: gate mode with ``exactly_once`` (one Kafka transaction per poll);
* ``monitor-st`` / ``gate-st``: as ``monitor`` / ``gate`` with stream time installed as ``qstreams worker``
  does (event-time windows, stream uniqueness of ``event_id``, partials, heartbeats and changelogs produced
  to the compacted topics, window summaries): the cost of stream time is ``gate-st`` next to ``gate``.

``--decoders bulk,message`` runs every worker mode once per JSON decoder, in the other order at each repetition
of a mode (list modes twice, e.g. ``--modes raw,monitor,gate,eos,raw,monitor,gate,eos``, for both orders):
``bulk`` is :class:`streams.formats.decoder.Decoder` (the default), ``message`` the per-message
:class:`~streams.formats.decoder.MessageDecoder` it replaced (``Decoder(bulk=False)``), so both are compared
with the same raw baseline in one run. ``--data predictions`` uses ``contracts/fraud_predictions.odcs.yaml``
records (``generate_prediction_records``, ~290 bytes) instead of the card features (~670 bytes).

Prints msg/s, the ratio to the baseline, the added latency per batch (getmany
return to offsets committed: p50/p99), the peak RSS of the process and its CPU time per record (user + system,
all threads, from its first batch on: steadier than msg/s on a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONTRACT = ROOT / "contracts" / "card_transactions.odcs.yaml"
DATA = {  # --data: contract, its topic's physicalName
    "card": (CONTRACT, "features.card-transactions.v1"),
    "predictions": (ROOT / "contracts" / "fraud_predictions.odcs.yaml", "predictions.card-fraud.v1"),
}
CPU_AT_START: list[float] = []  # process CPU time when the timed part of a run starts (its first batch)
MODES = ("raw", "copy", "monitor", "gate", "eos", "monitor-st", "gate-st")


# --- setup (parent process) ------------------------------------------------------------------------


async def preproduce(bootstrap: str, topic: str, records: int, partitions: int, data: str = "card") -> float:
    """Create ``topic`` and fill it fast (one record batch per partition at a time); returns mean value size."""
    import orjson
    from aiokafka import AIOKafkaProducer
    from kafka.admin import KafkaAdminClient  # type: ignore[import-untyped,unused-ignore]

    from streams.testing import generate_feature_records, generate_prediction_records

    generate = generate_prediction_records if data == "predictions" else generate_feature_records

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    spec = {"num_partitions": partitions, "replication_factor": 1}
    admin.create_topics({topic: dict(spec), f"{topic}.copy": dict(spec)})
    admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20, acks=1)
    await producer.start()
    size, done, chunk = 0, 0, 50_000
    try:
        while done < records:
            n = min(chunk, records - done)
            faults = {"out_of_range": 0.005, "invalid_enum": 0.005}
            batch = generate(n, seed=done, faults=faults).records
            values = [orjson.dumps(r) for r in batch]
            size += sum(map(len, values))
            futures = []
            for p in range(partitions):
                builder = producer.create_batch()
                for i in range(p, n, partitions):
                    key = str(done + i).encode()
                    if builder.append(key=key, value=values[i], timestamp=None) is None:
                        futures.append(await producer.send_batch(builder, topic, partition=p))
                        builder = producer.create_batch()
                        builder.append(key=key, value=values[i], timestamp=None)
                futures.append(await producer.send_batch(builder, topic, partition=p))
            await asyncio.gather(*futures)
            done += n
    finally:
        await producer.stop()
    return size / records


def run_child(
    mode: str, bootstrap: str, topic: str, records: int, batch: int, data: str = "card", decoder: str = "bulk"
) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", mode, "--bootstrap", bootstrap, "--topic", topic,
           "--records", str(records), "--batch", str(batch), "--data", data, "--decoders", decoder]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{mode} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# --- runs (child process) ------------------------------------------------------------------------------


class PeakRss:
    def __init__(self) -> None:
        import psutil

        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, self.proc.memory_info().rss)


async def raw_loop(bootstrap: str, topic: str, records: int, batch: int, forward: bool) -> tuple[float, list[float]]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"bench-{uuid.uuid4().hex}", enable_auto_commit=False,
        auto_offset_reset="earliest", max_partition_fetch_bytes=4 << 20, fetch_max_bytes=64 << 20,
    )  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5,
                                max_batch_size=1 << 20)  # fmt: skip
    await consumer.start()
    if forward:
        await producer.start()
        await producer.partitions_for(f"{topic}.copy")
    latencies: list[float] = []
    pending: list[tuple[float, dict[Any, int], list[asyncio.Future[Any]]]] = []
    seen, started = 0, 0.0
    try:
        while seen < records:
            polled = await consumer.getmany(max_records=batch, timeout_ms=200)
            if not polled:
                continue
            t = time.perf_counter()
            if not started:
                started = t
                CPU_AT_START.append(time.process_time())
            offsets, futures = {}, []
            for tp, msgs in polled.items():
                seen += len(msgs)
                if not forward:
                    for m in msgs:
                        json.loads(m.value)
                    continue
                builder = producer.create_batch()
                for m in msgs:
                    if builder.append(key=m.key, value=m.value, timestamp=None) is None:
                        futures.append(await producer.send_batch(builder, f"{topic}.copy", partition=tp.partition))
                        builder = producer.create_batch()
                        builder.append(key=m.key, value=m.value, timestamp=None)
                futures.append(await producer.send_batch(builder, f"{topic}.copy", partition=tp.partition))
                offsets[tp] = msgs[-1].offset + 1
            if not forward:
                latencies.append(time.perf_counter() - t)
                continue
            pending.append((t, offsets, futures))
            while pending and (len(pending) > 8 or seen >= records or all(f.done() for f in pending[0][2])):
                t0, offs, futs = pending.pop(0)
                await asyncio.gather(*futs)
                await consumer.commit(offs)
                latencies.append(time.perf_counter() - t0)
        return time.perf_counter() - started, latencies
    finally:
        await consumer.stop()
        if forward:
            await producer.stop()


async def worker_loop(
    bootstrap: str, topic: str, records: int, batch: int, mode: str, data: str = "card", decoder: str = "bulk"
) -> tuple[float, list[float]]:
    from streams.cli.stream_time import kafka_observers
    from streams.contracts.loader import load_contracts
    from streams.kafka.worker import BatchWorker, build_bindings, tune_gc
    from streams.observability import Metrics
    from streams.settings import Mode, Settings

    if decoder == "message":  # the per-message decoder, as the worker had it before the bulk decode
        import functools

        import streams.pipeline.binding as binding_module
        from streams.formats.decoder import Decoder

        binding_module.Decoder = functools.partial(Decoder, bulk=False)  # type: ignore[misc]
    stream_time = mode.endswith("-st")
    mode = mode.removesuffix("-st")

    with tempfile.TemporaryDirectory() as tmp:
        path, physical = DATA[data]
        text = path.read_text().replace(f"physicalName: {physical}", f"physicalName: {topic}")
        (Path(tmp) / "c.odcs.yaml").write_text(text)
        load_contracts(tmp)
        settings = Settings(
            bootstrap_servers=bootstrap, contracts_dir=Path(tmp), app_id=f"bench-{uuid.uuid4().hex}",
            mode=Mode.GATE if mode == "eos" else Mode(mode), exactly_once=mode == "eos",
            events_topic=f"{topic}.events", batch_max_records=batch, web_port=0, topic_partitions=4,
            stream_time=stream_time,
        )  # fmt: skip
        bindings, metrics = build_bindings(settings), Metrics()
        observers = kafka_observers(settings, bindings, "bench", metrics)
        worker = BatchWorker(settings, bindings, worker_id="bench", metrics=metrics, observers=observers)
        tune_gc()
        task = asyncio.create_task(worker.run())
        while not worker.commit_latencies:
            await asyncio.sleep(0.005)
            if task.done():
                await task
        started = time.perf_counter() - worker.commit_latencies[0]
        CPU_AT_START.append(time.process_time())
        while sum(worker.committed.values()) < records:
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        worker.stop()
        await task
        return elapsed, list(worker.commit_latencies)


def child(mode: str, bootstrap: str, topic: str, records: int, batch: int, data: str, decoder: str) -> None:
    rss = PeakRss()
    if mode in ("raw", "copy"):
        elapsed, latencies = asyncio.run(raw_loop(bootstrap, topic, records, batch, forward=mode == "copy"))
    else:
        elapsed, latencies = asyncio.run(worker_loop(bootstrap, topic, records, batch, mode, data, decoder))
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    label = mode if mode in ("raw", "copy") or decoder == "bulk" else f"{mode}/{decoder}"
    out = {"mode": label, "seconds": elapsed, "rate": records / elapsed, "p50": q[49], "p99": q[98],
           "batches": len(latencies), "rss": rss.stop(),
           "cpu_us": (time.process_time() - CPU_AT_START[0]) / records * 1e6}  # fmt: skip
    print(json.dumps(out))


# --- main ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch", type=int, default=5000, help="getmany max_records / batch_max_records")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--data", choices=sorted(DATA), default="card")
    parser.add_argument("--decoders", default="bulk", help="bulk, message or bulk,message (see above)")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.bootstrap, args.topic, args.records, args.batch, args.data, args.decoders)
        return
    import logging

    logging.basicConfig(level=logging.WARNING)
    from streams.dev.broker import kafka_bootstrap

    with kafka_bootstrap() as bootstrap:
        topic = f"bench-features-{uuid.uuid4().hex[:8]}"
        t0 = time.perf_counter()
        size = asyncio.run(preproduce(bootstrap, topic, args.records, args.partitions, args.data))
        print(f"broker {bootstrap}; topic {topic}: {args.records:,} records of {size:.0f} bytes (mean) on "
              f"{args.partitions} partitions, produced in {time.perf_counter() - t0:.1f} s; "
              f"batch {args.batch}; {os.cpu_count()} CPUs")  # fmt: skip
        decoders = args.decoders.split(",")
        runs = []
        seen: dict[str, int] = {}
        for m in args.modes.split(","):
            # alternate which decoder runs first at each repetition of a mode (the second of a pair tends to run
            # faster: the broker has settled), so that a mode listed twice runs in both orders
            seen[m] = seen.get(m, 0) + 1
            order = decoders if seen[m] % 2 else decoders[::-1]
            runs += [(m, "bulk")] if m in ("raw", "copy") else [(m, d) for d in order]
        results = [run_child(m, bootstrap, topic, args.records, args.batch, args.data, d) for m, d in runs]
    base = next((r["rate"] for r in results if r["mode"] == "raw"), results[0]["rate"])
    print(f"\n| {'run':<16} | {'msg/s':>8} | {'vs raw':>6} | {'p50 ms':>7} | {'p99 ms':>7} | {'peak RSS MB':>11} | "
          f"{'CPU µs/rec':>10} |")  # fmt: skip
    print(f"|{'-' * 18}|{'-' * 10}|{'-' * 8}|{'-' * 9}|{'-' * 9}|{'-' * 13}|{'-' * 12}|")
    for r in results:
        print(f"| {r['mode']:<16} | {r['rate']:>8,.0f} | {r['rate'] / base:>6.0%} | {r['p50'] * 1000:>7.1f} | "
              f"{r['p99'] * 1000:>7.1f} | {r['rss'] / 2**20:>11.0f} | {r['cpu_us']:>10.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
