"""Soak: one ``qstreams worker`` for ``--minutes`` at a fixed rate with incidents, its RSS and fds sampled.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--rate 500] [--csv soak.csv]

Uses the broker in ``KAFKA_BOOTSTRAP_SERVERS``, else starts one (``streams.dev.broker``). Runs
``qstreams worker`` as a subprocess in gate mode with stream time on (window summaries, stream
uniqueness, partials and changelogs on the compacted internal topics) on the example feature contract
``contracts/card_transactions.odcs.yaml`` bound to a fresh topic, and produces ``--rate`` feature records/s
(``streams.testing.generate_feature_records``, event time = wall clock). Every ``--incident-every`` seconds,
for ``--incident-seconds``, an incident is injected: a share of the records get contract faults
(out of range, invalid enum, wrong type, null required, bad pattern) and undecodable messages
(``streams.testing.undecodable_messages``: empty, not UTF-8, not JSON, truncated, too large, ...) are mixed in.

Every ``--sample-seconds`` it samples the worker's RSS, open file descriptors and threads (psutil on
``/proc``), and on ``/metrics`` (port from ``STREAMS_WEB_PORT``) the records it counted
(``qstreams_records_total`` per outcome) and the uniqueness claims it holds (``qstreams_unique_keys``,
``qstreams_unique_state_bytes``). The uniqueness horizon is ``--unique-horizon-seconds`` (default 120 s, so
the claims should reach their steady size during warm-up; at the product default of 24 h the claims are state
by design, 24 bytes per key, not a leak). At the end it prints a markdown table (one row per minute), RSS
after warm-up vs at the end (target: < +10%), the RSS slope after warm-up, fds, and checks that every produced
record was counted (valid + quarantined + dead-lettered), then writes every sample to ``--csv``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from worker_process import free_port, metrics_text, stop  # noqa: E402 - beside this script

CONTRACT = ROOT / "contracts" / "card_transactions.odcs.yaml"
TICK_S = 0.1
FAULTS = {"out_of_range": 0.02, "invalid_enum": 0.02, "wrong_type": 0.02, "null_required": 0.02, "bad_pattern": 0.02}
UNDECODABLE_SHARE = 0.02
MAX_MESSAGE_BYTES = 65_536  # the worker's STREAMS_MAX_MESSAGE_BYTES: a "too large" record stays producible
_GAUGE = re.compile(r"^(qstreams_unique_keys|qstreams_unique_state_bytes)\{[^}]*\}\s+([0-9.e+]+)$", re.M)
_RECORDS = re.compile(r'^qstreams_records_total\{[^}]*outcome="(\w+)"[^}]*\}\s+([0-9.e+]+)$', re.M)


@dataclass
class Sample:
    t: float
    rss_mb: float
    fds: int
    threads: int
    cpu_s: float
    produced: int
    counted: dict[str, int] = field(default_factory=dict)
    incident: bool = False
    claims: int = 0  # uniqueness claims held (qstreams_unique_keys) and their memory
    claims_mb: float = 0.0

    def row(self) -> dict[str, Any]:
        c = self.counted
        return {"t_s": round(self.t, 1), "rss_mb": round(self.rss_mb, 1), "fds": self.fds, "threads": self.threads,
                "cpu_s": round(self.cpu_s, 2), "produced": self.produced, "valid": c.get("valid", 0),
                "quarantined": c.get("quarantined", 0), "dead_lettered": c.get("dead_lettered", 0),
                "incident": int(self.incident), "claims": self.claims,
                "claims_mb": round(self.claims_mb, 2)}  # fmt: skip


def scrape(port: int) -> dict[str, int]:
    """Records counted by the worker per outcome (summed over contracts and topics); {} while /metrics is down."""
    text = metrics_text(port)
    out: dict[str, int] = {}
    for outcome, value in _RECORDS.findall(text):
        out[outcome] = out.get(outcome, 0) + int(float(value))
    return out


class Producer:
    """``rate`` feature records/s, event time = now; during an incident some get faults or are undecodable."""

    def __init__(self, bootstrap: str, topic: str, rate: float, every: float, length: float) -> None:
        self.bootstrap, self.topic, self.rate, self.every, self.length = bootstrap, topic, rate, every, length
        self.sent = 0
        self.incident = False

    def _garbage(self, rng: random.Random) -> list[bytes]:
        from streams.testing import undecodable_messages

        values = [m.value for _, m in undecodable_messages(self.topic, max_message_bytes=MAX_MESSAGE_BYTES)]
        return [v for v in values if v is not None]

    async def run(self, t0: float, duration: float) -> None:
        import orjson
        from aiokafka import AIOKafkaProducer

        from streams.testing import generate_feature_records

        rng = random.Random(13)
        garbage = self._garbage(rng)
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5, acks="all",
                                    max_request_size=4 * MAX_MESSAGE_BYTES)  # fmt: skip
        await producer.start()
        owed, tick = 0.0, 0
        try:
            while (elapsed := time.monotonic() - t0) < duration:
                owed += self.rate * TICK_S
                n, owed = int(owed), owed - int(owed)
                # the first incident starts after one quiet period, so warm-up sees both regimes
                self.incident = elapsed >= self.every and (elapsed % self.every) < self.length
                if n:
                    batch = generate_feature_records(
                        n, seed=rng.randrange(2**31), faults=FAULTS if self.incident else None
                    )
                    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
                    futures = []
                    for r in batch.records:
                        if isinstance(r.get("event_ts"), str):
                            r["event_ts"] = now
                        value = orjson.dumps(r)
                        if self.incident and rng.random() < UNDECODABLE_SHARE:
                            value = rng.choice(garbage)
                        futures.append(await producer.send(self.topic, value=value, key=str(r["event_id"]).encode()))
                    await asyncio.gather(*futures)
                    self.sent += n
                tick += 1
                await asyncio.sleep(max(0.0, t0 + tick * TICK_S - time.monotonic()))
        finally:
            await producer.stop()


async def sample_loop(proc: Any, port: int, producer: Producer, t0: float, duration: float, every: float,
                      samples: list[Sample]) -> None:  # fmt: skip
    while (t := time.monotonic() - t0) < duration:
        mem, cpu = proc.memory_info(), proc.cpu_times()
        sample = Sample(t, mem.rss / 2**20, proc.num_fds(), proc.num_threads(), cpu.user + cpu.system,
                        producer.sent, scrape(port), producer.incident)  # fmt: skip
        gauges: dict[str, float] = {}
        for name, value in _GAUGE.findall(metrics_text(port)):
            gauges[name] = gauges.get(name, 0.0) + float(value)
        sample.claims = int(gauges.get("qstreams_unique_keys", 0))
        sample.claims_mb = gauges.get("qstreams_unique_state_bytes", 0.0) / 2**20
        samples.append(sample)
        await asyncio.sleep(max(0.0, every - ((time.monotonic() - t0) - t)))


def start_worker(bootstrap: str, topic: str, port: int, tmp: Path, horizon: float, log: Any) -> subprocess.Popen[bytes]:
    text = CONTRACT.read_text().replace("physicalName: features.card-transactions.v1", f"physicalName: {topic}")
    (tmp / "card_transactions.odcs.yaml").write_text(text)
    exe = shutil.which("qstreams", path=str(Path(sys.executable).parent)) or "qstreams"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STREAMS_STREAM_TIME": "true", "STREAMS_MODE": "gate",
           "STREAMS_APP_ID": f"soak-{uuid.uuid4().hex[:8]}", "STREAMS_EVENTS_TOPIC": f"{topic}.events",
           "STREAMS_WEB_PORT": str(port), "STREAMS_UNIQUE_HORIZON_SECONDS": str(horizon),
           "STREAMS_MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES), "STREAMS_LOG_LEVEL": "WARNING"}  # fmt: skip
    cmd = [exe, "worker", "--contracts", str(tmp), "--broker", bootstrap]
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


async def soak(args: argparse.Namespace, bootstrap: str) -> tuple[list[Sample], int, dict[str, int], int | None]:
    import psutil
    from kafka.admin import KafkaAdminClient, NewTopic  # type: ignore[import-untyped,unused-ignore]

    topic = f"soak-features-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=args.partitions, replication_factor=1)])
    admin.close()
    port = free_port()
    duration = args.minutes * 60
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory() as tmp, open(args.log, "wb") as log:
        worker = start_worker(bootstrap, topic, port, Path(tmp), args.unique_horizon_seconds, log)
        proc = psutil.Process(worker.pid)
        try:
            deadline = time.monotonic() + 90
            while not scrape(port) and "qstreams_records" not in metrics_text(port):
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the worker did not come up (exit {worker.poll()}); see {args.log}")
                await asyncio.sleep(0.5)
            producer = Producer(bootstrap, topic, args.rate, args.incident_every, args.incident_seconds)
            print(f"broker {bootstrap}; topic {topic} ({args.partitions} partitions); worker pid {worker.pid}, "
                  f"/metrics on :{port}; {args.rate:g} records/s for {args.minutes:g} min", flush=True)  # fmt: skip
            t0 = time.monotonic()
            sampler = sample_loop(proc, port, producer, t0, duration, args.sample_seconds, samples)
            await asyncio.gather(producer.run(t0, duration), sampler)
            drain_until = time.monotonic() + 60  # let the worker judge the tail
            while sum(scrape(port).values()) < producer.sent and time.monotonic() < drain_until:
                await asyncio.sleep(1)
            final = scrape(port)
        finally:
            code = stop(worker)
    return samples, producer.sent, final, code


def window(samples: list[Sample], start: float, end: float) -> list[Sample]:
    return [s for s in samples if start <= s.t < end]


def report(args: argparse.Namespace, samples: list[Sample], sent: int, final: dict[str, int], code: int | None) -> bool:
    duration, warm = args.minutes * 60, args.warmup_minutes * 60
    print(f"\n| {'min':>4} | {'RSS MB':>7} | {'fds':>4} | {'threads':>7} | {'CPU %':>5} | {'produced':>9} | "
          f"{'counted':>9} | {'quarantined':>11} | {'DLQ':>5} | {'claims':>9} | {'claims MB':>9} |")  # fmt: skip
    print(f"|{'-' * 6}|{'-' * 9}|{'-' * 6}|{'-' * 9}|{'-' * 7}|{'-' * 11}|{'-' * 11}|{'-' * 13}|{'-' * 7}|"
          f"{'-' * 11}|{'-' * 11}|")  # fmt: skip
    prev = samples[0]
    for minute in range(1, math.ceil(duration / 60) + 1):
        inside = window(samples, (minute - 1) * 60, minute * 60)
        if not inside:
            continue
        s = inside[-1]
        cpu = 100 * (s.cpu_s - prev.cpu_s) / max(1e-9, s.t - prev.t)
        prev = s
        c = s.counted
        q, d = c.get("quarantined", 0), c.get("dead_lettered", 0)
        print(f"| {minute:>4} | {s.rss_mb:>7.1f} | {s.fds:>4} | {s.threads:>7} | {cpu:>5.0f} | {s.produced:>9,} | "
              f"{sum(c.values()):>9,} | {q:>11,} | {d:>5,} | {s.claims:>9,} | {s.claims_mb:>9.1f} |")  # fmt: skip
    after = window(samples, warm, warm + 60)
    end = window(samples, duration - 60, duration + 1)
    ok = True
    if after and end:
        rss_warm = statistics.median(s.rss_mb for s in after)
        rss_end = statistics.median(s.rss_mb for s in end)
        growth = rss_end / rss_warm - 1
        tail = [s for s in samples if s.t >= warm]
        slope = statistics.linear_regression([s.t / 60 for s in tail], [s.rss_mb for s in tail]).slope
        peak = max(s.rss_mb for s in samples)
        fds_warm, fds_end = statistics.median(s.fds for s in after), statistics.median(s.fds for s in end)
        print(f"\nRSS (median over a minute): {rss_warm:.1f} MB after warm-up ({args.warmup_minutes:g} min) -> "
              f"{rss_end:.1f} MB in the last minute: {growth:+.1%} (target < +10%); slope after warm-up "
              f"{slope:+.2f} MB/min; peak {peak:.1f} MB")  # fmt: skip
        print(f"open fds: {fds_warm:.0f} after warm-up -> {fds_end:.0f} at the end (max {max(s.fds for s in samples)})")
        ok = growth < 0.10 and fds_end <= fds_warm + 5
    counted = sum(final.values())
    print(f"produced {sent:,}; the worker counted {counted:,} ({final}); worker exit {code}")
    ok = ok and counted == sent
    print("PASS" if ok else "FAIL: RSS grew >= 10%, fds grew, or records were not all counted")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=500.0, help="records/s")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--warmup-minutes", type=float, default=2.0)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--incident-every", type=float, default=60.0, help="seconds between incident starts")
    parser.add_argument("--incident-seconds", type=float, default=15.0, help="length of one incident")
    parser.add_argument("--unique-horizon-seconds", type=float, default=120.0)
    parser.add_argument("--csv", default="soak.csv", help="every sample, one row each")
    parser.add_argument("--log", default="soak-worker.log", help="the worker's stdout/stderr")
    args = parser.parse_args()
    if args.minutes <= args.warmup_minutes:
        parser.error("--minutes must exceed --warmup-minutes")
    from streams.dev.broker import kafka_bootstrap

    with kafka_bootstrap() as bootstrap:
        samples, sent, final, code = asyncio.run(soak(args, bootstrap))
    with open(args.csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(samples[0].row()))
        writer.writeheader()
        writer.writerows(s.row() for s in samples)
    ok = report(args, samples, sent, final, code)
    print(f"samples: {args.csv}; worker log: {args.log}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
