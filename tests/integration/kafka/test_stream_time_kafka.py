"""Stream time on the real broker: two workers in one group over a 6-partition topic publish one summary per
window whose counts equal one polars computation over the same records; uniqueness holds across batches and
across a restart (state restored from the compacted topics)."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from streams.cli.stream_time import kafka_observers
from streams.contracts.loader import parse_contract
from streams.kafka.worker import BatchWorker, build_bindings
from streams.settings import Settings
from tests.integration.kafka.test_worker_kafka import produce, read_topic, settings_for, wait_committed
from tests.unit.windows.helpers import CONTRACT, LATENESS_MS, T0, WINDOW_MS, frame

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]
SUMMARY = b"io.qualitystreams.window.summary.v1"


def contracts_for(tmp_path: Path, topic: str) -> Path:
    directory = tmp_path / "contracts"
    directory.mkdir(exist_ok=True)
    (directory / "orders.odcs.yaml").write_text(CONTRACT.replace("physicalName: orders.v1", f"physicalName: {topic}"))
    return directory


def worker(settings: Settings, name: str) -> BatchWorker:
    s = settings.model_copy(update={"worker_id": name})
    bindings = build_bindings(s)
    return BatchWorker(s, bindings, worker_id=name, observers=kafka_observers(s, bindings, name))


def message(ident: int | None, at: int, amount: float) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    ts = datetime.fromtimestamp((T0 + at) / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
    value = {"id": ident, "event_ts": ts, "amount": amount, "country": "DE", "code": f"c{ident}"}
    return str(ident).encode(), orjson.dumps(value), []  # keyed by id: an id stays on one partition


async def summaries(bootstrap: str, events: str) -> list[dict[str, Any]]:
    return [
        orjson.loads(r.value) for r in await read_topic(bootstrap, events) if dict(r.headers).get("ce_type") == SUMMARY
    ]


async def wait_for(condition: Callable[[], Any], timeout: float = 90.0, why: Callable[[], str] = str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await condition()
        if got:
            return got
        await asyncio.sleep(0.5)
    raise AssertionError(f"condition not met in time {why()}")


def oracle(
    records: list[Any], *, skewed_after_ms: int | None = None, before_ms: int | None = None
) -> tuple[dict[int, pl.DataFrame], int]:
    """Non-late records per window start and the number of late ones, from the source topic's own order
    (partition, offset). Records after ``skewed_after_ms`` (absolute) are skewed: left out, and they do not advance
    their partition's newest event time; windows from ``before_ms`` on are left out."""
    newest: dict[int, int] = {}
    keep: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
    late = 0
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        v = orjson.loads(r.value)
        at = int(datetime.fromisoformat(v["event_ts"].replace("Z", "+00:00")).timestamp() * 1000) - T0
        if skewed_after_ms is not None and T0 + at > skewed_after_ms:
            continue
        if r.partition in newest and (at - at % WINDOW_MS) + WINDOW_MS <= newest[r.partition] - LATENESS_MS:
            late += 1
        else:
            keep[T0 + at - at % WINDOW_MS].append(v | {"at": at})
        newest[r.partition] = max(newest.get(r.partition, at), at)
    return {
        start: frame([v["id"] for v in vs], [T0 + v["at"] for v in vs], [v["amount"] for v in vs],
                     [v["country"] for v in vs], [v["code"] for v in vs])
        for start, vs in keep.items()
        if before_ms is None or start < before_ms
    }, late  # fmt: skip


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
def test_two_workers_six_partitions_one_summary_per_window_and_uniqueness_across_a_restart(
    kafka_broker: Any, kafka_topic_factory: Callable[..., str], kafka_group_id: str, tmp_path: Path, exactly_once: bool
) -> None:
    """Exactly-once too: the stream-time observer's own records go on the worker's non-transactional producer (on
    the transactional one, aiokafka refused each tick's records outside a transaction: no summary was ever
    published)."""
    bootstrap = kafka_broker.bootstrap_servers
    topic = kafka_topic_factory(partitions=6, prefix="orders")
    events = f"{topic}.events"
    settings = settings_for(
        bootstrap, contracts_for(tmp_path, topic), kafka_group_id, events, batch_events=False,
        window_idle_close_seconds=12.0, max_clock_skew_seconds=10**9, state_partitions=3,
    ).model_copy(update={"batch_max_records": 40, "exactly_once": exactly_once})  # fmt: skip
    first = [message(i, (i * 137) % 32_000, float(i % 80) - 2) for i in range(400)]
    first += [message(i, 33_000 + i, 5.0) for i in range(100, 110)]  # duplicates of accepted ids, later batches

    async def scenario() -> None:
        await produce(bootstrap, topic, first[:200])
        a, b = worker(settings, "w-a"), worker(settings, "w-b")
        tasks = [asyncio.create_task(a.run())]
        await wait_committed(bootstrap, kafka_group_id, topic)
        tasks.append(asyncio.create_task(b.run()))  # joins mid-stream: a rebalance, state moves with partitions
        await asyncio.sleep(4.0)  # shorter than the idle close: no window closes meanwhile
        await produce(bootstrap, topic, first[200:])
        await wait_committed(bootstrap, kafka_group_id, topic)
        source = await read_topic(bootstrap, topic)
        expected, _ = oracle(source)
        got = await wait_for(lambda: _all(bootstrap, events, len(expected)))
        assert a.committed and b.committed, "both workers consumed partitions"
        starts = collections.Counter(s["window"]["start"] for s in got)
        assert len(got) == len(expected) and set(starts.values()) == {1}, starts
        truth = parse_contract(CONTRACT)
        for s in got:
            start = int(datetime.fromisoformat(s["window"]["start"].replace("Z", "+00:00")).timestamp() * 1000)
            window = expected[start]
            report = truth.validate(window)
            assert (s["records"], s["rows"]) == (window.height, window.height)
            checks = {c["name"]: c for c in s["checks"]}
            for name in ("amount:minimum", "enough_rows", "big_share", "code_duplicates", "id:required"):
                assert (checks[name]["failures"], checks[name]["passed"]) == (
                    report.check(name).failures, report.check(name).passed,
                ), name  # fmt: skip
        unique = sum(next(c["failures"] for c in s["checks"] if c["name"] == "id:unique") for s in got)
        assert unique == 10  # the ten later duplicates, whatever batch or worker saw them
        a.stop()
        b.stop()
        await asyncio.gather(*tasks)
        # a restart: a new worker restores the claims from the changelog
        await produce(bootstrap, topic, [message(105, 40_000, 5.0), message(900, 40_500, 5.0)])
        c = worker(settings, "w-c")
        task = asyncio.create_task(c.run())
        await wait_committed(bootstrap, kafka_group_id, topic)
        later = await wait_for(lambda: _all(bootstrap, events, len(expected) + 1))
        c.stop()
        await task
        [last] = [s for s in later if s not in got]
        assert (last["records"], last["valid"], last["quarantined"]) == (2, 1, 1)
        quarantined = await read_topic(bootstrap, f"{topic}.quarantine")
        dups = [
            orjson.loads(r.value)["id"]
            for r in quarantined
            if b"id:unique" in dict(r.headers).get("qstreams.errors.rules", b"")
        ]
        assert sorted(dups) == sorted([*range(100, 110), 105])

    asyncio.run(scenario())


async def _all(bootstrap: str, events: str, n: int) -> list[dict[str, Any]] | None:
    got = await summaries(bootstrap, events)
    return got if len(got) >= n else None


def test_the_state_reader_and_its_kafka_python_fallback_read_the_same_records(
    kafka_broker: Any, kafka_group_id: str, tmp_path: Path
) -> None:
    """Restoring state reads a compacted stream-time topic to its end: the aiokafka reader and the kafka-python
    fallback (used when the first client cannot find the partition's end) return the same records."""
    from streams.windows.kafka_state import KafkaStateReader, ensure_state_topics, read_sync
    from streams.windows.topics import state_topic

    bootstrap = kafka_broker.bootstrap_servers
    settings = settings_for(bootstrap, tmp_path, kafka_group_id, f"{kafka_group_id}.events", state_partitions=2)
    topic = state_topic(settings.app_id)
    records = [(f"k{i % 7}".encode(), None if i % 5 == 4 else f"v{i}".encode(), [("h", b"%d" % i)]) for i in range(40)]

    async def scenario() -> None:
        created = await ensure_state_topics(settings)
        assert topic in created
        producer_records = [(k, v, h) for k, v, h in records]
        await produce_to(bootstrap, topic, 1, producer_records)
        reader = KafkaStateReader(settings)
        try:
            for start in (0, 17, 40, 55):
                got, end = await reader.read(topic, 1, start)
                sync, sync_end = await asyncio.to_thread(read_sync, settings, topic, 1, start)
                assert end == sync_end == max(40, start)
                shape = [(m.offset, m.key, m.value, tuple(m.headers)) for m in got]
                assert shape == [(m.offset, m.key, m.value, tuple(m.headers)) for m in sync]
                assert [o for o, *_ in shape] == list(range(start, 40))
                assert shape[:1] == ([] if start >= 40 else [(start, *records[start][:2], (("h", b"%d" % start),))])
            empty, at = await reader.read(topic, 0)
            assert (empty, at) == ([], 0)
        finally:
            await reader.close()

    asyncio.run(scenario())


async def produce_to(bootstrap: str, topic: str, partition: int, msgs: list[tuple[bytes, bytes | None, Any]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value, headers in msgs:
            await producer.send_and_wait(topic, value, key=key, headers=headers, partition=partition)
    finally:
        await producer.stop()
