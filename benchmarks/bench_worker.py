"""Throughput of the stream worker against a real broker, next to raw aiokafka loops.

    .venv/bin/python benchmarks/bench_worker.py [--records 500000] [--partitions 4] [--batch 5000]
    .venv/bin/python benchmarks/bench_worker.py --modes raw,monitor,gate,eos --repeat 2 [--baseline OLD_CHECKOUT]
        [--data card|predictions] [--decoders bulk,message] [--profile]

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
  to the compacted topics, window summaries): the cost of stream time is ``gate-st`` next to ``gate``;
* ``monitor-drift`` / ``gate-drift`` (``--profile`` adds them after the modes asked for): as ``-st`` with the contract
  naming a reference profile (``qstreams.reference``, built from 20,000 generated records): every window slice
  profiled, the profiles merged and judged for drift. The cost of profiles is ``gate-drift`` next to ``gate-st``.

``--decoders bulk,message`` runs every worker mode once per JSON decoder, in the other order at each repetition
of a mode (list modes twice, e.g. ``--modes raw,monitor,gate,eos,raw,monitor,gate,eos``, for both orders):
``bulk`` is :class:`streams.formats.decoder.Decoder` (the default), ``message`` the per-message
:class:`~streams.formats.decoder.MessageDecoder` it replaced (``Decoder(bulk=False)``), so both are compared
with the same raw baseline in one run. ``--data predictions`` uses ``contracts/fraud_predictions.odcs.yaml``
records (``generate_prediction_records``, ~290 bytes) instead of the card features (~670 bytes).

Prints msg/s, the ratio to the baseline, the mean number of partitions a worker's poll held (a topic's poll is
decoded and validated in one call: the more partitions per poll, the fewer calls), the added latency per batch (getmany
return to offsets committed: p50/p99), the peak RSS of the process and its CPU time per record (user + system,
every thread of the process, first batch to last commit: steadier than msg/s on a shared machine).

The worker modes produce with the codec of ``STREAMS_OUTPUT_COMPRESSION`` (zstd unless set in the environment, which
the children inherit; a ``--baseline`` checkout older than that setting produces uncompressed batches).

``BENCH_WORKER_TRACE=1`` in the environment times the worker's phases in each worker run (poll, prepare, submit,
waiting for a transaction, its offsets and commit), the cyclic collector's pauses, the event loop's stalls and the
three slowest batches cut at their phases (``benchmarks/worker_trace.py``), printed under each round (with
``--repeat`` or ``--baseline``); ``BENCH_WORKER_SLOW=1`` adds asyncio's slow callbacks (debug mode: slower runs).

``--repeat N`` runs the modes N times and prints medians; ``--baseline DIR`` (an older checkout, e.g. from
``git archive``) also runs each worker mode against DIR's package right after this tree's, on the same topic.
Both add raw's CPU per record over a mode's as a share: on a shared machine it holds where wall-time rates do not,
and the CPU per record of the broker this script started (its JVM, over the whole child run): on 2 cores the broker's
share bounds the modes that produce (``gate``, ``eos``) more than the worker's own.
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
MODES = ("raw", "copy", "monitor", "gate", "eos", "monitor-st", "gate-st")
CPU_AT_START: list[float] = []  # process CPU time when the timed part of a run starts (its first batch)
CPU: list[float] = []  # a child's CPU seconds over its timed part (steadier than wall time on a shared machine)
POLLS: list[int] = []  # partition batches of each poll that held records (a worker mode's child)
DRIFT_MODES = ("monitor-drift", "gate-drift")


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
    mode: str,
    bootstrap: str,
    topic: str,
    records: int,
    batch: int,
    tree: Path | None = None,
    data: str = "card",
    decoder: str = "bulk",
) -> dict[str, Any]:
    """One run in its own process; ``tree``: run this script's child against the package of another checkout."""
    cmd = [sys.executable, __file__, "--child", mode, "--bootstrap", bootstrap, "--topic", topic,
           "--records", str(records), "--batch", str(batch), "--data", data, "--decoders", decoder]  # fmt: skip
    env = None
    if tree is not None:
        env = os.environ | {"PYTHONPATH": str(tree), "BENCH_WORKER_ROOT": str(tree)}
    broker = broker_cpu()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1800, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{mode} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    if broker is not None:  # the broker's CPU over the whole child run (its start included), per record
        result["broker_cpu_us"] = ((broker_cpu() or broker) - broker) / records * 1e6
    return result


def broker_cpu() -> float | None:
    """CPU seconds (user + system) of the broker this script started (a JVM child process), None without one."""
    import psutil

    jvms = [p for p in psutil.Process().children(recursive=True) if "java" in p.name()]
    return sum(sum(p.cpu_times()[:2]) for p in jvms) if jvms else None


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
        CPU.append(time.process_time() - CPU_AT_START[0])
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
    drift = mode.endswith("-drift")
    stream_time = drift or mode.endswith("-st")
    mode = mode.removesuffix("-st").removesuffix("-drift")

    with tempfile.TemporaryDirectory() as tmp:
        path, physical = DATA[data]
        text = path.read_text().replace(f"physicalName: {physical}", f"physicalName: {topic}")
        (Path(tmp) / "c.odcs.yaml").write_text(text)
        if drift:
            with_reference(Path(tmp) / "c.odcs.yaml")
        load_contracts(tmp)
        settings = Settings(
            bootstrap_servers=bootstrap, contracts_dir=Path(tmp), app_id=f"bench-{uuid.uuid4().hex}",
            mode=Mode.GATE if mode == "eos" else Mode(mode), exactly_once=mode == "eos",
            events_topic=f"{topic}.events", batch_max_records=batch, web_port=0, topic_partitions=4,
            stream_time=stream_time,
        )  # fmt: skip
        bindings, metrics = build_bindings(settings), Metrics()
        observers = [*kafka_observers(settings, bindings, "bench", metrics), _polls()]
        worker = BatchWorker(settings, bindings, worker_id="bench", metrics=metrics, observers=observers)
        tune_gc()
        watch = asyncio.create_task(sys.modules["worker_trace"].watch_loop()) if "worker_trace" in sys.modules else None
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
        CPU.append(time.process_time() - CPU_AT_START[0])
        worker.stop()
        await task
        if watch is not None:
            watch.cancel()
        return elapsed, list(worker.commit_latencies)


def _polls() -> Any:
    """An observer counting the partition batches of each poll into ``POLLS``."""
    from streams.kafka.observers import WorkerObserver

    class Polls(WorkerObserver):
        current = 0

        def on_poll(self, topics: Any) -> None:
            if self.current:
                POLLS.append(self.current)
            self.current = 0

        def on_batch_end(self, tp: Any, binding: Any, messages: int, result: Any, lag: Any) -> None:
            self.current += 1

    return Polls()


def with_reference(contract: Path) -> None:
    """Name a reference profile of 20,000 generated records in ``contract`` (drift monitoring on)."""
    from streams.contracts.loader import load_contract
    from streams.profiles.reference import build_reference, save_reference
    from streams.testing import generate_feature_frame

    marker = "    physicalType: topic\n"
    block = "    customProperties:\n      - property: qstreams.reference\n        value: ref.qsref\n"
    contract.write_text(contract.read_text().replace(marker, marker + block, 1))
    generate_feature_frame(20_000, seed=101).write_parquet(contract.parent / "ref.parquet")
    save_reference(build_reference(load_contract(contract), None, [contract.parent / "ref.parquet"]),
                   contract.parent / "ref.qsref")  # fmt: skip
    (contract.parent / "ref.parquet").unlink()


def child(mode: str, bootstrap: str, topic: str, records: int, batch: int, data: str, decoder: str) -> None:
    rss = PeakRss()
    if mode in ("raw", "copy"):
        elapsed, latencies = asyncio.run(raw_loop(bootstrap, topic, records, batch, forward=mode == "copy"))
    else:
        traced = os.environ.get("BENCH_WORKER_TRACE") == "1"
        if traced:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            import worker_trace

            worker_trace.install()
        elapsed, latencies = asyncio.run(worker_loop(bootstrap, topic, records, batch, mode, data, decoder))
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    label = mode if mode in ("raw", "copy") or decoder == "bulk" else f"{mode}/{decoder}"
    out = {"mode": label, "seconds": elapsed, "rate": records / elapsed, "p50": q[49], "p99": q[98],
           "batches": len(latencies), "rss": rss.stop()}  # fmt: skip
    if CPU:  # CPU of the process (every thread) from client start to the last commit, per record
        out["cpu_us"] = CPU[-1] / records * 1e6
    if POLLS:  # how many partitions a poll held: a topic's poll is decoded and validated in one call
        out["partitions_per_poll"] = statistics.mean(POLLS)
    if mode not in ("raw", "copy") and os.environ.get("BENCH_WORKER_TRACE") == "1":
        import worker_trace

        out["trace"] = worker_trace.summary()
    print(json.dumps(out))


# --- main ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch", type=int, default=5000, help="getmany max_records / batch_max_records")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--repeat", type=int, default=1, help="run the modes this many times; print medians")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of older code: each worker mode also runs against "
        "its package, alternating with this tree's, on the same topic (medians and ratios)",
    )
    parser.add_argument("--profile", action="store_true", help="also run the -drift modes (profiles on)")
    parser.add_argument("--data", choices=sorted(DATA), default="card")
    parser.add_argument("--decoders", default="bulk", help="bulk, message or bulk,message (see above)")
    parser.add_argument("--child", choices=MODES + DRIFT_MODES, help=argparse.SUPPRESS)
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
        modes = args.modes.split(",")  # a mode may repeat (alternate runs on a loaded machine)
        modes += [m for m in DRIFT_MODES if args.profile and m not in modes]
        if args.baseline is not None or args.repeat > 1:
            args.modes = ",".join(modes)
            compare(args, bootstrap, topic)
            return
        decoders = args.decoders.split(",")
        runs = []
        seen: dict[str, int] = {}
        for m in modes:
            # alternate which decoder runs first at each repetition of a mode (the second of a pair tends to run
            # faster: the broker has settled), so that a mode listed twice runs in both orders
            seen[m] = seen.get(m, 0) + 1
            order = decoders if seen[m] % 2 else decoders[::-1]
            runs += [(m, "bulk")] if m in ("raw", "copy") else [(m, d) for d in order]
        results = [run_child(m, bootstrap, topic, args.records, args.batch, None, args.data, d) for m, d in runs]
    base = next((r["rate"] for r in results if r["mode"] == "raw"), results[0]["rate"])
    print(f"\n| {'run':<16} | {'msg/s':>8} | {'vs raw':>6} | {'p50 ms':>7} | {'p99 ms':>7} | {'peak RSS MB':>11} | "
          f"{'CPU µs/rec':>10} |")  # fmt: skip
    print(f"|{'-' * 18}|{'-' * 10}|{'-' * 8}|{'-' * 9}|{'-' * 9}|{'-' * 13}|{'-' * 12}|")
    for r in results:
        r.setdefault("cpu_us", float("nan"))
        print(f"| {r['mode']:<16} | {r['rate']:>8,.0f} | {r['rate'] / base:>6.0%} | {r['p50'] * 1000:>7.1f} | "
              f"{r['p99'] * 1000:>7.1f} | {r['rss'] / 2**20:>11.0f} | {r['cpu_us']:>10.1f} |")  # fmt: skip


def compare(args: argparse.Namespace, bootstrap: str, topic: str) -> None:
    """``--repeat`` rounds of every mode (and, with ``--baseline``, every worker mode against the old tree right after
    this tree's, so both see the same machine); prints per-round rates and medians, each as a share of raw."""
    trees: dict[str, Path | None] = {"new": None}
    if args.baseline is not None:
        trees = {"old": args.baseline.resolve(), "new": None}
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for round_ in range(args.repeat):
        for mode in args.modes.split(","):
            for name, tree in trees.items() if mode not in ("raw", "copy") else [("-", None)]:
                r = run_child(mode, bootstrap, topic, args.records, args.batch, tree, args.data)
                runs.setdefault((mode, name), []).append(r)
                print(f"round {round_ + 1}: {mode:<10} {name:<3} {r['rate']:>9,.0f} msg/s  p50 {r['p50'] * 1000:7.1f} "
                      f"ms  p99 {r['p99'] * 1000:7.1f} ms  CPU {r.get('cpu_us', float('nan')):5.1f} µs/record"
                      f"  broker {r.get('broker_cpu_us', float('nan')):5.1f} µs/record"
                      + (f"  {r['partitions_per_poll']:.2f} partitions/poll" if "partitions_per_poll" in r else ""),
                      flush=True)  # fmt: skip
                if "trace" in r:
                    import worker_trace

                    print(f"         {worker_trace.line(r['trace'])}", flush=True)
    raw = runs.get(("raw", "-"))
    base = statistics.median(r["rate"] for r in raw) if raw else None
    print(f"\nmedians of {args.repeat} round(s)")
    head = (("run", 10), ("code", 4), ("msg/s", 8), ("vs raw", 6), ("new/old", 7), ("p50 ms", 7), ("p99 ms", 7),
            ("CPU µs/rec", 10), ("CPU vs raw", 10), ("broker µs/rec", 13))  # fmt: skip
    print("| " + " | ".join(f"{n:<{w}}" if n in ("run", "code") else f"{n:>{w}}" for n, w in head) + " |")
    print("|" + "|".join("-" * (w + 2) for _, w in head) + "|")
    raw_cpu = statistics.median(r.get("cpu_us", float("nan")) for r in raw) if raw else None
    for (mode, name), rs in runs.items():
        rate = statistics.median(r["rate"] for r in rs)
        old = runs.get((mode, "old"))
        gain = f"{rate / statistics.median(r['rate'] for r in old):.2f}" if old and name == "new" else ""
        share = f"{rate / base:.0%}" if base else ""
        p50, p99 = (statistics.median(r[k] for r in rs) * 1000 for k in ("p50", "p99"))
        cpu = statistics.median(r.get("cpu_us", float("nan")) for r in rs)
        cpu_share = f"{raw_cpu / cpu:.0%}" if raw_cpu else ""  # raw's CPU per record over this run's: a rate share
        broker = statistics.median(r.get("broker_cpu_us", float("nan")) for r in rs)
        print(f"| {mode:<10} | {name:<4} | {rate:>8,.0f} | {share:>6} | {gain:>7} | {p50:>7.1f} | {p99:>7.1f} | "
              f"{cpu:>10.1f} | {cpu_share:>10} | {broker:>13.1f} |")  # fmt: skip


if __name__ == "__main__":
    if os.environ.get("BENCH_WORKER_ROOT"):  # a child run against another checkout's package
        sys.path.insert(0, os.environ["BENCH_WORKER_ROOT"])
    main()
