"""Stream time across worker processes on the real broker: three ``qstreams worker`` processes in one group over a
6-partition topic, one of them SIGKILLed mid-stream and replaced. One summary per window whose counts equal one
computation over the source topic, late and skewed records judged on event time, every later duplicate of an
accepted id caught (keyed by id), and no two different records of one id forwarded."""

from __future__ import annotations

import asyncio
import collections
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streams.contracts.loader import parse_contract
from tests.integration.kafka.test_stream_time_kafka import _all, contracts_for, oracle, wait_for
from tests.integration.kafka.test_worker_kafka import read_topic, settings_for, wait_committed, worker_env
from tests.unit.windows.helpers import CONTRACT, T0

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]
CLOSER_MS = 200_000  # one record per partition this late in event time: every earlier window becomes final


def value(ident: int, at_ms: int, code: str) -> bytes:
    ts = datetime.fromtimestamp((T0 + at_ms) / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
    return orjson.dumps({"id": ident, "event_ts": ts, "amount": float(ident % 50), "country": "DE", "code": code})


async def produce(bootstrap: str, topic: str, rows: list[tuple[int, int, int | None]]) -> None:
    """``(id, event time offset ms, explicit partition or None)``; keyed by id; a unique ``code`` per record."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value(i, at, f"c{i}-{at}"), key=str(i).encode(), partition=part)
            for i, at, part in rows
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@contextmanager
def workers(env: dict[str, str], log_dir: Path) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> subprocess.Popen[bytes]:
        with (log_dir / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "streams.cli.main", "worker"], env=env | {"STREAMS_WORKER_ID": name},
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
def test_three_worker_processes_one_of_them_sigkilled_one_summary_per_window_and_no_duplicate_passes(
    kafka_broker: Any, kafka_topic_factory: Callable[..., str], kafka_group_id: str, tmp_path: Path, exactly_once: bool
) -> None:
    """Exactly-once too: the killed worker's open transaction (partials, heartbeats, outputs) is aborted by the
    broker at its timeout; its successor reads the state topic as it stands (uncommitted records included, as the
    merger does), so what it restores and what the merger counts agree."""
    bootstrap = kafka_broker.bootstrap_servers
    topic = kafka_topic_factory(partitions=6, prefix="orders")
    events = f"{topic}.events"
    skew_s = 3_600
    settings = settings_for(bootstrap, contracts_for(tmp_path, topic), kafka_group_id, events, batch_events=False)
    env = worker_env(settings) | {
        "STREAMS_BATCH_MAX_RECORDS": "40", "STREAMS_STATE_PARTITIONS": "3", "STREAMS_BATCH_EVENTS": "false",
        "STREAMS_WINDOW_IDLE_CLOSE_SECONDS": "600", "STREAMS_MAX_CLOCK_SKEW_SECONDS": str(skew_s),
        "STREAMS_TOPIC_CHECK_INTERVAL_S": "1", "STREAMS_EXACTLY_ONCE": str(exactly_once).lower(),
    }  # fmt: skip
    env.pop("STREAMS_WORKER_ID", None)
    now_ms = int(time.time() * 1000)
    first = [(i, (i * 137) % 30_000, None) for i in range(300)]
    first += [(i, 31_000 + i, None) for i in range(100, 110)]  # later duplicates of accepted ids
    first += [(1000, 500, None)]  # its partition is far past the first window by then: late
    first += [(1001, now_ms - T0 + 86_400_000, None)]  # a day ahead of the wall clock: skewed
    second = [(i, 30_000 + (i * 53) % 20_000, None) for i in range(300, 400)]
    second += [(i, 52_000 + i, None) for i in range(200, 205)]  # more duplicates, after the kill
    second += [(105, 53_000, None)]  # a duplicate of a duplicate: the first accepted record still holds the id
    closers = [(5000 + p, CLOSER_MS, p) for p in range(6)]

    async def scenario(start: Callable[[str], subprocess.Popen[bytes]]) -> None:
        await produce(bootstrap, topic, first[:150])
        start("w1")
        victim = start("w2")
        start("w3")
        await wait_committed(bootstrap, kafka_group_id, topic, timeout=150)
        await produce(bootstrap, topic, first[150:])
        await wait_committed(bootstrap, kafka_group_id, topic, at_least=200, timeout=150)
        producing = asyncio.create_task(produce(bootstrap, topic, second))
        await asyncio.sleep(0.2)
        victim.send_signal(signal.SIGKILL)  # mid-stream: its partitions move, its uncommitted batches are read again
        victim.wait(10)
        await producing
        start("w4")
        await produce(bootstrap, topic, closers)
        await wait_committed(bootstrap, kafka_group_id, topic, timeout=180)

    with workers(env, tmp_path) as start:
        asyncio.run(scenario(start))
        source = asyncio.run(read_topic(bootstrap, topic))
        expected, late = oracle(source, skewed_after_ms=now_ms + skew_s * 1000, before_ms=T0 + CLOSER_MS)

        async def wanted() -> list[dict[str, Any]] | None:
            got = await _all(bootstrap, events, len(expected))
            mine = [s for s in got or [] if _start(s) < T0 + CLOSER_MS]
            return mine if len(mine) >= len(expected) else None

        got = asyncio.run(wait_for(wanted, 120.0, why=lambda: worker_logs(tmp_path)))
    starts = collections.Counter(_start(s) for s in got)
    assert set(starts) == set(expected) and set(starts.values()) == {1}, starts  # one summary per window
    truth = parse_contract(CONTRACT)
    for s in got:
        window = expected[_start(s)]
        assert (s["records"], s["rows"]) == (window.height, window.height), s["window"]
        report = truth.validate(window)
        checks = {c["name"]: c for c in s["checks"]}
        for name in ("enough_rows", "big_share", "code_duplicates", "id:required"):
            assert (checks[name]["failures"], checks[name]["passed"]) == (
                report.check(name).failures, report.check(name).passed,
            ), name  # fmt: skip
    assert sum(s["late"] for s in got) == late >= 1
    unique = sum(next(c["failures"] for c in s["checks"] if c["name"] == "id:unique") for s in got)
    assert unique == 16  # 10 + 5 + 1 later duplicates, whatever worker, batch or restart saw them
    ids = {i for i, _, _ in first + second + closers}

    async def validated() -> list[Any] | None:
        """Read committed, the killed worker's open transaction holds back every later record of its partitions
        (the last stable offset) until the broker aborts it at its timeout (30 s; a restarted worker with the same
        ``STREAMS_WORKER_ID`` fences it at once): wait for that."""
        got = await read_topic(bootstrap, f"{topic}.validated", committed_only=exactly_once)
        return got if {orjson.loads(r.value)["id"] for r in got} >= ids else None

    forwarded: dict[int, set[str]] = collections.defaultdict(set)
    copies: collections.Counter[str] = collections.Counter()
    for r in asyncio.run(wait_for(validated, 90.0)):
        v = orjson.loads(r.value)
        forwarded[v["id"]].add(v["code"])
        copies[v["code"]] += 1
    assert {i: c for i, c in forwarded.items() if len(c) > 1} == {}  # no two different records of an id passed
    if exactly_once:  # and, read committed, each record forwarded once, the killed worker's aborted writes aside
        assert {c: n for c, n in copies.items() if n > 1} == {}
    assert set(forwarded) == ids  # and none lost


def _start(summary: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(summary["window"]["start"].replace("Z", "+00:00")).timestamp() * 1000)


def worker_logs(logs: Path) -> str:
    return repr({p.name: p.read_text(errors="replace")[-1500:] for p in sorted(logs.glob("w*.log"))})
