"""Stream time in the real worker loop, against the in-memory transport: one summary per window, counts equal
to one polars computation over the same records, stream uniqueness across batches, workers and a restart."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import polars as pl
import pytest

from streams.cli.stream_time import summary_record
from streams.events.codec import event_data, from_kafka
from streams.kafka.batches import BatchWorker
from streams.kafka.transport import AssignmentCallbacks, TopicPartition
from streams.observability import Health, Metrics
from streams.pipeline.binding import Binding
from streams.settings import Settings
from streams.testing.transport import InMemoryTransport
from streams.windows.metrics import StreamTimeMetrics
from streams.windows.observer import TransportStateReader, install
from streams.windows.topics import changelog_topic, state_topic

from .helpers import LATENESS_MS, T0, WINDOW_MS, contract, frame

TOPIC, EVENTS, APP = "orders.v1", "events", "qs-test"
SUMMARY = b"io.qualitystreams.window.summary.v1"
PARTITIONS = 6


class Member(InMemoryTransport):
    """One member of a group over a shared in-memory cluster, owning the given source partitions."""

    def __init__(self, cluster: InMemoryTransport | None, owned: set[int]) -> None:
        super().__init__(sources=[TOPIC], partitions={TOPIC: PARTITIONS, state_topic(APP): 3, changelog_topic(APP): 3,
                                                      EVENTS: 1})  # fmt: skip
        if cluster is not None:
            self.logs, self.committed = cluster.logs, cluster.committed
        self.owned = owned

    async def connect(self, callbacks: AssignmentCallbacks) -> bool:
        await super().connect(callbacks)
        self._next_assignment = {TopicPartition(TOPIC, p) for p in self.owned}
        return True


def settings(idle: float, exactly_once: bool = False) -> Settings:
    return Settings(bootstrap_servers="memory:9092", app_id=APP, events_topic=EVENTS, batch_max_latency_ms=5,
                    batch_max_records=7, topic_check_interval_s=60.0, web_port=0, window_idle_close_seconds=idle,
                    max_clock_skew_seconds=10**9, state_partitions=3, exactly_once=exactly_once)  # fmt: skip


def worker(transport: Member, name: str, idle: float = 2.0, exactly_once: bool = False) -> BatchWorker:
    s = settings(idle, exactly_once)
    c = contract()
    binding = Binding(c, c.schema(), s)
    metrics = Metrics()
    observer = install(s, [binding], summary_record(EVENTS), TransportStateReader(transport), worker_id=name,
                       tick_seconds=0.05, metrics=StreamTimeMetrics(metrics.registry))  # fmt: skip
    return BatchWorker(s, [binding], worker_id=name, transport=transport, metrics=metrics,
                       health=Health(max_age=60.0), observers=[observer])  # fmt: skip


@contextlib.asynccontextmanager
async def running(*workers: BatchWorker) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield
    finally:
        for w in workers:
            w.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 10.0)


def produce(cluster: InMemoryTransport, rows: list[tuple[int, int | None, int, float | None, str | None]]) -> None:
    for part, ident, at, amount, country in rows:
        ts = datetime.fromtimestamp((T0 + at) / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
        value = {"id": ident, "event_ts": ts, "amount": amount, "country": country, "code": "a"}
        cluster.produce(TOPIC, orjson.dumps(value), partition=part, timestamp_ms=T0 + at)


def summaries(cluster: InMemoryTransport) -> list[dict[str, Any]]:
    out = []
    for m in cluster.records(EVENTS):
        if dict(m.headers).get("ce_type") == SUMMARY:
            out.append(event_data(from_kafka(m.key, m.value, m.headers)))
    return out


def sample(w: BatchWorker, name: str, **labels: str) -> float:
    return w.metrics.registry.get_sample_value(name, labels) or 0.0


def oracle(rows: list[tuple[int, int | None, int, float | None, str | None]]) -> dict[int, pl.DataFrame]:
    """Non-late records per window start, by a plain loop over each partition in offset order."""
    newest: dict[int, int] = {}
    keep: dict[int, list[int]] = {}
    for i, (part, _, at, _, _) in enumerate(rows):
        late = part in newest and (at - at % WINDOW_MS) + WINDOW_MS <= newest[part] - LATENESS_MS
        newest[part] = max(newest.get(part, at), at)
        if not late:
            keep.setdefault(T0 + at - at % WINDOW_MS, []).append(i)
    whole = frame([r[1] for r in rows], [T0 + r[2] for r in rows], [r[3] for r in rows], [r[4] for r in rows],
                  ["a"] * len(rows))  # fmt: skip
    return {start: whole[idx] for start, idx in keep.items()}


ROWS = [  # (partition, id, event time offset ms, amount, country): keyed by id, so ids stay on one partition
    *((i % PARTITIONS, i, (i * 397) % 25_000, float(i % 90) - 5, ["DE", "FR", "XX"][i % 3]) for i in range(60)),
    (0, 12, 26_000, 10.0, "DE"),  # a duplicate of id 12 (accepted) in a later batch (same partition: keyed)
    (0, 0, 26_500, 10.0, "DE"),  # id 0 was quarantined (negative amount): it claimed nothing, this one passes
    (1, None, 27_000, 1.0, "DE"),  # a null id: required fails
    (2, 14, 1_000, 5.0, "DE"),  # late on partition 2 (its newest is past 12 s) and a duplicate of 14
]


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
def test_two_workers_one_summary_per_window_equal_to_one_computation(exactly_once: bool) -> None:
    """Exactly-once too: the observer's own records (heartbeats, summaries, ``closed``) go outside the poll's
    transactions, which a transactional producer refuses when none is open, as the in-memory one does."""

    async def scenario() -> None:
        cluster = Member(None, {0, 1, 2})
        other = Member(cluster, {3, 4, 5})
        produce(cluster, ROWS)
        a, b = worker(cluster, "w-a", exactly_once=exactly_once), worker(other, "w-b", exactly_once=exactly_once)
        expected = oracle([(p, i, t, am, co) for p, i, t, am, co in ROWS])
        async with running(a, b):
            await cluster.wait_for(lambda: len(summaries(cluster)) >= len(expected), timeout=20.0)
            await asyncio.sleep(0.3)  # nothing more may come
        got = summaries(cluster)
        starts = Counter(s["window"]["start"] for s in got)
        assert all(n == 1 for n in starts.values()) and len(got) == len(expected)
        truth = contract()
        for s in got:
            start = int(datetime.fromisoformat(s["window"]["start"].replace("Z", "+00:00")).timestamp() * 1000)
            window = expected[start]
            assert (s["records"], s["rows"]) == (window.height, window.height)
            report = truth.validate(window)
            checks = {c["name"]: c for c in s["checks"]}
            for name in ("amount:minimum", "country_known", "enough_rows", "big_share", "id:required"):
                assert (checks[name]["failures"], checks[name]["passed"]) == (
                    report.check(name).failures, report.check(name).passed,
                ), name  # fmt: skip
            assert s["finalized_by"] == "w-a"  # the consumer of partition 0 merges the stream
        assert sum(s["late"] for s in got) == 1
        assert sum(next(c["failures"] for c in s["checks"] if c["name"] == "id:unique") for s in got) == 1
        # one rule.violation per failed rule per window, and none per batch
        violations = [
            event_data(from_kafka(m.key, m.value, m.headers))
            for m in cluster.records(EVENTS)
            if dict(m.headers).get("ce_type") == b"io.qualitystreams.rule.violation.v1"
        ]
        failed = Counter((s["window"]["start"], c["name"]) for s in got for c in s["checks"] if not c["passed"])
        assert failed and Counter((v["window"]["start"], v["rule"]["name"]) for v in violations) == failed
        assert {v["scope"] for v in violations} == {"window"}
        for v in violations:
            check = next(
                c for s in got if s["window"] == v["window"] for c in s["checks"] if c["name"] == v["rule"]["name"]
            )
            assert (v["failures"], v["first_offending"]) == (check["failures"], check["first_offending"])
        # the stream-time metrics of the two workers add up to what the events say
        assert sum(sample(w, "qstreams_windows_finalized_total", topic=TOPIC) for w in (a, b)) == len(got)
        assert sum(sample(w, "qstreams_event_time_records_total", topic=TOPIC, kind="late") for w in (a, b)) == 1
        claims = sum(sample(w, "qstreams_unique_keys", topic=TOPIC, column="id") for w in (a, b))
        assert 0 < claims <= len({r[1] for r in ROWS if r[1] is not None})
        for internal in (state_topic(APP), changelog_topic(APP)):  # every byte written is counted, once
            written = sum(sample(w, "qstreams_state_bytes_total", topic=TOPIC, internal_topic=internal) for w in (a, b))
            assert written == sum(len(m.key or b"") + len(m.value or b"") for m in cluster.records(internal)) > 0
        assert sample(a, "qstreams_state_records_total", topic=TOPIC, kind="changelog") > 0
        quarantined = cluster.records(TOPIC + ".quarantine")
        rules = [dict(m.headers).get("qstreams.errors.rules") for m in quarantined]
        assert sum(1 for r in rules if r and b"id:unique" in r) == 2  # the later duplicate of 0 and the late 2

    asyncio.run(asyncio.wait_for(scenario(), 60.0))


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
def test_uniqueness_and_windows_survive_a_restart(exactly_once: bool) -> None:
    async def scenario() -> None:
        cluster = Member(None, set(range(PARTITIONS)))
        produce(cluster, [(0, 1, 1_000, 1.0, "DE"), (0, 2, 2_000, 1.0, "DE")])
        first = worker(cluster, "w-1", idle=5.0, exactly_once=exactly_once)  # stopped long before its window closed
        async with running(first):
            await cluster.wait_for(lambda: cluster.committed.get(TopicPartition(TOPIC, 0)) == 2)
        # a new process: the same ids again must be duplicates, and the window counts each record once
        produce(cluster, [(0, 1, 3_000, 1.0, "DE"), (0, 3, 4_000, 1.0, "DE")])
        second = worker(Member(cluster, set(range(PARTITIONS))), "w-2", idle=0.4, exactly_once=exactly_once)
        async with running(second):
            await cluster.wait_for(lambda: len(summaries(cluster)) >= 1, timeout=20.0)
        [s] = summaries(cluster)
        assert (s["records"], s["valid"], s["quarantined"]) == (4, 3, 1)
        assert next(c for c in s["checks"] if c["name"] == "id:unique")["failures"] == 1
        [dup] = cluster.records(TOPIC + ".quarantine")
        assert (
            orjson.loads(dup.value or b"{}")["id"] == 1 and b"id:unique" in dict(dup.headers)["qstreams.errors.rules"]
        )

    asyncio.run(asyncio.wait_for(scenario(), 60.0))


def test_an_assignment_during_start_waits_for_the_stream_time_topics() -> None:
    """A first assignment can arrive while on_start still creates the compacted topics: restoring must wait, or
    reading a topic that does not exist yet lets the broker auto-create it with one partition, uncompacted."""
    calls: list[str] = []

    class Reader:
        async def read(self, topic: str, partition: int, start: int = 0) -> tuple[list[Any], int]:
            calls.append(f"read {topic}")
            return [], 0

    async def prepare() -> None:
        await asyncio.sleep(0.2)
        calls.append("created")

    async def scenario() -> None:
        s = settings(2.0)
        c = contract()
        observer = install(s, [Binding(c, c.schema(), s)], summary_record(EVENTS), Reader(), worker_id="w",
                           prepare=prepare)  # fmt: skip
        transport = Member(None, set(range(PARTITIONS)))
        assign = asyncio.create_task(observer.on_assign({TopicPartition(TOPIC, 0)}))
        await asyncio.sleep(0.05)
        await observer.on_start(transport)
        await assign
        await observer.on_stopping()

    asyncio.run(asyncio.wait_for(scenario(), 20.0))
    assert calls[0] == "created" and calls[1:3] == [f"read {state_topic(APP)}", f"read {changelog_topic(APP)}"]


def test_the_worker_drops_claims_older_than_the_uniqueness_horizon(monkeypatch: pytest.MonkeyPatch) -> None:
    """Claims live for the horizon, not for the worker's uptime (the soak found them growing forever)."""
    from streams.windows import observer as windows_observer

    monkeypatch.setattr(windows_observer, "EXPIRE_EVERY_MS", 50)

    async def scenario() -> None:
        cluster = Member(None, set(range(PARTITIONS)))
        produce(cluster, [(0, i, i * 1_000, 1.0, "DE") for i in range(1, 6)])  # ids 1..5 in the first seconds
        produce(cluster, [(0, 6, 200_000, 1.0, "DE")])  # 200 s later: the first claims are past a 60 s horizon
        s = settings(2.0).model_copy(update={"unique_horizon_seconds": 60.0})
        c = contract()
        binding = Binding(c, c.schema(), s)
        observer = install(s, [binding], summary_record(EVENTS), TransportStateReader(cluster), worker_id="w",
                           tick_seconds=0.05)  # fmt: skip
        w = BatchWorker(s, [binding], worker_id="w", transport=cluster, metrics=Metrics(),
                        health=Health(max_age=60.0), observers=[observer])  # fmt: skip
        stage = observer.stages[TOPIC]
        async with running(w):
            await cluster.wait_for(lambda: cluster.committed.get(TopicPartition(TOPIC, 0)) == 6)
            await cluster.wait_for(lambda: len(stage.stream.states[0].unique["id"]) == 1, timeout=10.0)
            produce(cluster, [(0, 1, 201_000, 1.0, "DE")])  # id 1 again, its claim expired: accepted
            await cluster.wait_for(lambda: cluster.committed.get(TopicPartition(TOPIC, 0)) == 7)
        assert cluster.records(TOPIC + ".quarantine") == []
        tombstones = [m for m in cluster.records(changelog_topic(APP)) if m.value is None]
        assert tombstones  # the expired claims' changelog records are deleted too

    asyncio.run(asyncio.wait_for(scenario(), 60.0))
