"""A worker's CPU on slow feeds: one ``qstreams worker`` idle and at 50, 500 and 5,000 records/s.

    .venv/bin/python benchmarks/bench_low_rate.py [--rates 0,50,500,5000] [--configs gate,gate-st]
        [--seconds 20] [--repeat 2] [--baseline OLD_CHECKOUT] [--profile DIR]

Most feature topics are slow: a worker's fixed cost per poll, batch and second matters as much as its peak
rate (issue 13: 0.9 ms of CPU per record at 500 records/s, 40x the cost per record at full load). For each
config (``gate``, ``monitor``, ``eos``: exactly-once, ``-st``: stream time on) one worker is started on a fresh
topic (3 partitions, ``contracts/card_transactions.odcs.yaml``) and fed each rate in turn, event time = wall
clock, valid records with unique ids, sent in 5 ms ticks (spread over the second as many producers would: a
consumer that answers every fetch at once sees a fetch response per few records); after ``--warmup`` seconds
at a rate, ``--seconds`` are measured: the worker process's CPU (user + system, ``/proc`` through psutil: every
thread of the worker, nothing else), and from
its ``/metrics`` the batches (``qstreams_batch_records`` count and sum) and the records counted.

``--baseline DIR`` runs the same configs against an older checkout's package right after this tree's (same
machine state), ``--repeat`` rounds, and prints medians: CPU ms per second, µs per record, batches per second
and records per batch, old and new. ``--profile DIR`` samples the worker's main thread (the event loop) every
millisecond while it is not waiting in ``select`` and writes, per config, tree and rate step, the share of samples
in each function (inclusive) and at each leaf (``.txt``; the even steps are warm-ups).
Uses the broker in ``KAFKA_BOOTSTRAP_SERVERS``, else starts one (``streams.dev.broker``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import shutil
import signal
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
from worker_process import free_port, metrics_text, stop  # noqa: E402 - beside this script

CONTRACT = ROOT / "contracts" / "card_transactions.odcs.yaml"
TICK_S = 0.005  # records spread over the second as many producers would (a fetch may return every record)
_BATCHES = re.compile(r"^qstreams_batch_records_(count|sum)\{[^}]*\}\s+([0-9.e+]+)$", re.M)
_RECORDS = re.compile(r'^qstreams_records_total\{[^}]*outcome="(\w+)"[^}]*\}\s+([0-9.e+]+)$', re.M)
CONFIGS = {
    "gate": {"STREAMS_MODE": "gate", "STREAMS_STREAM_TIME": "false"},
    "gate-st": {"STREAMS_MODE": "gate", "STREAMS_STREAM_TIME": "true"},
    "monitor": {"STREAMS_MODE": "monitor", "STREAMS_STREAM_TIME": "false"},
    "monitor-st": {"STREAMS_MODE": "monitor", "STREAMS_STREAM_TIME": "true"},
    "eos": {"STREAMS_MODE": "gate", "STREAMS_STREAM_TIME": "false", "STREAMS_EXACTLY_ONCE": "true"},
    "eos-st": {"STREAMS_MODE": "gate", "STREAMS_STREAM_TIME": "true", "STREAMS_EXACTLY_ONCE": "true"},
}
# the worker, optionally sampled (see --profile)
LAUNCH = """
import collections, os, signal, sys, threading, time
from streams.cli.main import main
out = os.environ.get("BENCH_LOW_PROFILE")
if not out:
    sys.exit(main())
# a sampler of the main thread (the event loop): every 1 ms its stack, unless it waits in select (idle);
# SIGUSR1 writes the counts so far (inclusive per function, and per leaf) and starts again
main_id, stacks, step = threading.main_thread().ident, collections.Counter(), [0]
def sample():
    while True:
        time.sleep(0.001)
        f = sys._current_frames().get(main_id)
        if f is None or f.f_code.co_name in ("select", "poll") and "selectors" in f.f_code.co_filename:
            continue
        names = []
        while f is not None:
            names.append(f"{f.f_code.co_filename.split('site-packages/')[-1].split('lowrate/')[-1]}:{f.f_code.co_name}")
            f = f.f_back
        stacks[tuple(names)] += 1
def dump(*_):
    inclusive, leaf = collections.Counter(), collections.Counter()
    for names, n in list(stacks.items()):
        for name in set(names):
            inclusive[name] += n
        leaf[names[0]] += n
    total = sum(leaf.values())
    with open(f"{out}.{step[0]}.txt", "w") as fh:
        fh.write(f"samples {total}\\n")
        for name, n in inclusive.most_common(120):
            fh.write(f"{n:6} {n / max(total, 1):6.1%} {name}\\n")
        fh.write("leaf\\n")
        for name, n in leaf.most_common(60):
            fh.write(f"{n:6} {n / max(total, 1):6.1%} {name}\\n")
    step[0] += 1
    stacks.clear()
signal.signal(signal.SIGUSR1, dump)
threading.Thread(target=sample, daemon=True).start()
sys.exit(main())
"""


def _main_thread_cpu(proc: Any) -> float:
    """CPU seconds of the worker's main thread (the event loop; processing runs there inline or in a thread)."""
    return next((t.user_time + t.system_time for t in proc.threads() if t.id == proc.pid), 0.0)


def scrape(port: int) -> tuple[int, float, int, int]:
    """(batches, records in batches, records counted, valid) from the worker's /metrics (summed over topics)."""
    text = metrics_text(port)
    got = {"count": 0.0, "sum": 0.0}
    for kind, value in _BATCHES.findall(text):
        got[kind] += float(value)
    outcomes = [(o, int(float(v))) for o, v in _RECORDS.findall(text)]
    valid = sum(v for o, v in outcomes if o == "valid")
    return int(got["count"]), got["sum"], sum(v for _, v in outcomes), valid


class Feed:
    """Valid feature records at ``rate`` records/s (changed between steps), unique ids, event time = now."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic, self.rate, self.sent = bootstrap, topic, 0.0, 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        import orjson
        from aiokafka import AIOKafkaProducer

        from streams.testing import generate_feature_records

        pool = generate_feature_records(2_000, seed=13).records
        base = uuid.uuid4().int  # unique ids (the contract wants a UUID): base + n
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5, acks="all")
        await producer.start()
        owed, t0, tick = 0.0, time.monotonic(), 0
        acks: list[asyncio.Future[Any]] = []
        try:
            while not self._stop.is_set():
                owed += self.rate * TICK_S
                n, owed = int(owed), owed - int(owed)
                if n:
                    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
                    for i in range(n):
                        r = dict(pool[(self.sent + i) % len(pool)])
                        r["event_id"], r["event_ts"] = str(uuid.UUID(int=(base + self.sent + i) % 2**128)), now
                        acks.append(await producer.send(self.topic, value=orjson.dumps(r), key=r["event_id"].encode()))
                    self.sent += n
                    if len(acks) > 10_000:  # not awaited tick by tick: a round trip per tick slowed the feed
                        await asyncio.gather(*acks)
                        acks.clear()
                tick += 1
                await asyncio.sleep(max(0.0, t0 + tick * TICK_S - time.monotonic()))
            await asyncio.gather(*acks)
        finally:
            await producer.stop()

    def stop(self) -> None:
        self._stop.set()


def start_worker(config: str, bootstrap: str, topic: str, port: int, tmp: Path, tree: Path, profile: str | None,
                 log: Any) -> subprocess.Popen[bytes]:  # fmt: skip
    text = CONTRACT.read_text().replace("physicalName: features.card-transactions.v1", f"physicalName: {topic}")
    (tmp / "card_transactions.odcs.yaml").write_text(text)
    env = {**os.environ, **CONFIGS[config], "PYTHONPATH": str(tree), "STREAMS_APP_ID": f"low-{uuid.uuid4().hex[:8]}",
           "STREAMS_EVENTS_TOPIC": f"{topic}.events", "STREAMS_WEB_PORT": str(port), "STREAMS_LOG_LEVEL": "WARNING",
           "STREAMS_WORKER_ID": f"low-{uuid.uuid4().hex[:8]}"}  # fmt: skip
    if profile:
        env["BENCH_LOW_PROFILE"] = profile
    cmd = [sys.executable, "-c", LAUNCH, "worker", "--contracts", str(tmp), "--broker", bootstrap]
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(tmp))


async def one_worker(
    args: argparse.Namespace, bootstrap: str, config: str, tree: Path, name: str
) -> dict[int, dict[str, float]]:
    """One worker through every rate step: per rate, CPU ms/s, µs/record, batches/s, records/batch."""
    import psutil
    from kafka.admin import KafkaAdminClient, NewTopic  # type: ignore[import-untyped,unused-ignore]

    topic = f"low-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    admin.close()
    port = free_port()
    rates = [int(r) for r in args.rates.split(",")]
    out: dict[int, dict[str, float]] = {}
    profile = str(Path(args.profile).resolve() / f"{config}-{name}") if args.profile else None
    with tempfile.TemporaryDirectory() as tmp, open(Path(args.log).with_suffix(f".{config}.{name}.log"), "wb") as log:
        worker = start_worker(config, bootstrap, topic, port, Path(tmp), tree, profile, log)
        proc = psutil.Process(worker.pid)
        feed = Feed(bootstrap, topic)
        feeding = asyncio.ensure_future(feed.run())
        try:
            deadline = time.monotonic() + 120
            feed.rate = 20.0  # primer: wait until the worker judged records (assigned, state restored)
            while scrape(port)[2] < 20:
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the worker did not come up (exit {worker.poll()}); see {log.name}")
                await asyncio.sleep(0.5)
            for rate in rates:
                feed.rate = float(rate)
                await asyncio.sleep(args.warmup)
                if profile:
                    worker.send_signal(signal.SIGUSR1)  # the warm-up's profile: dropped (step numbers count)
                main0 = _main_thread_cpu(proc)
                cpu0, (b0, s0, c0, v0), t0 = sum(proc.cpu_times()[:2]), scrape(port), time.monotonic()
                await asyncio.sleep(args.seconds)
                cpu1, (b1, s1, c1, v1), t1 = sum(proc.cpu_times()[:2]), scrape(port), time.monotonic()
                main1 = _main_thread_cpu(proc)
                if profile:
                    worker.send_signal(signal.SIGUSR1)
                wall, cpu, nan = t1 - t0, cpu1 - cpu0, float("nan")
                batches, records = b1 - b0, s1 - s0
                out[rate] = r = {
                    "cpu_ms_s": cpu / wall * 1000, "rec_s": records / wall,
                    "cpu_us_rec": cpu / records * 1e6 if records else nan, "batches_s": batches / wall,
                    "rec_batch": records / batches if batches else nan,
                    "valid": (v1 - v0) / (c1 - c0) if c1 > c0 else nan,
                    "loop_share": (main1 - main0) / cpu if cpu > 0 else nan,
                }  # fmt: skip
                print(f"  {config:<10} {name:<3} {rate:>5}/s: CPU {r['cpu_ms_s']:6.1f} ms/s "
                      f"{r['cpu_us_rec']:7.1f} µs/rec {r['batches_s']:6.1f} batches/s {r['rec_batch']:7.1f} rec/batch "
                      f"({r['rec_s']:.0f} rec/s judged, {r['valid']:.0%} valid, {r['loop_share']:.0%} on the loop's "
                      "thread)", flush=True)  # fmt: skip
        finally:
            feed.stop()
            await asyncio.wait([feeding], timeout=10)
            stop(worker)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="0,50,500,5000", help="records/s, comma-separated (0: idle)")
    parser.add_argument("--configs", default="gate,gate-st", help=f"of {', '.join(CONFIGS)}")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured per rate")
    parser.add_argument("--warmup", type=float, default=6.0, help="seconds at a rate before measuring")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--baseline", type=Path, help="an older checkout, run right before this tree")
    parser.add_argument("--profile", help="a directory: sample the worker's event loop per rate step")
    parser.add_argument("--log", default="bench-low-rate.log", help="the workers' output (one file per run)")
    args = parser.parse_args()
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
    trees = {"new": ROOT} if args.baseline is None else {"old": args.baseline.resolve(), "new": ROOT}
    if shutil.which("java") is None and not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        print("warning: no java on PATH; streams.dev.broker may fail to start a broker", file=sys.stderr)
    from streams.dev.broker import kafka_bootstrap

    runs: dict[tuple[str, str, int], list[dict[str, float]]] = {}
    with kafka_bootstrap() as bootstrap:
        for round_ in range(args.repeat):
            for config in args.configs.split(","):
                order = list(trees.items()) if round_ % 2 == 0 else list(trees.items())[::-1]
                for name, tree in order:
                    print(f"round {round_ + 1}: {config} {name}", flush=True)
                    for rate, r in asyncio.run(one_worker(args, bootstrap, config, tree, name)).items():
                        runs.setdefault((config, name, rate), []).append(r)
    print(f"\nmedians of {args.repeat} round(s); CPU of the worker process (user + system, every thread)")
    print("| config | rate/s | code | CPU ms/s | CPU µs/record | batches/s | records/batch |")
    print("|--------|--------|------|----------|---------------|-----------|---------------|")
    for (config, name, rate), rs in runs.items():
        m = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        per = f"{m['cpu_us_rec']:.0f}" if rate else "-"
        print(f"| {config} | {rate:,} | {name} | {m['cpu_ms_s']:.1f} | {per} | {m['batches_s']:.1f} | "
              f"{m['rec_batch']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
