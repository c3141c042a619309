"""BatchWorker against the in-memory transport: commit-after-ack, retries, revoke and rebalance without a broker."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson

from streams.contracts.loader import load_contract
from streams.errors import CommitRefusedError
from streams.kafka.batches import BatchWorker
from streams.kafka.observers import WorkerObserver
from streams.kafka.transport import TopicPartition, Transport
from streams.observability import Health, Metrics
from streams.pipeline.binding import Binding
from streams.pipeline.records import BatchResult, Message
from streams.settings import Settings
from streams.testing import generate_feature_records
from streams.testing.transport import InMemoryTransport

ROOT = Path(__file__).resolve().parents[3]
CONTRACT = ROOT / "contracts" / "card_transactions.odcs.yaml"
TOPIC = "features.card-transactions.v1"
EVENTS = "events"
TP0, TP1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


def worker_for(transport: InMemoryTransport, *, observers: tuple[WorkerObserver, ...] = (), **more: Any) -> BatchWorker:
    config: dict[str, Any] = {
        "bootstrap_servers": "memory:9092", "events_topic": EVENTS, "batch_max_latency_ms": 5,
        "retry_backoff_ms": 20, "topic_check_interval_s": 60.0, "web_port": 0, "batch_events": True,
    } | more  # fmt: skip
    settings = Settings(**config)
    contract = load_contract(CONTRACT)
    binding = Binding(contract, contract.schema(), settings)
    return BatchWorker(settings, [binding], worker_id="w1", transport=transport, metrics=Metrics(),
                       health=Health(max_age=60.0), observers=observers)  # fmt: skip


@contextlib.asynccontextmanager
async def running(worker: BatchWorker) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(worker.run())
    try:
        yield task
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10.0)


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 30.0))


def feed(transport: InMemoryTransport, n: int, partition: int, seed: int = 1) -> tuple[list[Message], set[int]]:
    """``n`` feature records (10% wrong type, 10% invalid enum) on ``partition``; them and the invalid offsets."""
    batch = generate_feature_records(n, seed=seed, faults={"wrong_type": 0.1, "invalid_enum": 0.1})
    first = len(transport.records(TOPIC, partition))
    sent = [transport.produce(TOPIC, orjson.dumps(r), partition=partition, timestamp_ms=1_740_787_200_000 + i)
            for i, r in enumerate(batch.records)]  # fmt: skip
    return sent, {first + i for i in batch.expected_invalid}


def error_class(m: Message) -> bytes | None:
    return dict(m.headers).get("qstreams.errors.class")


class Recorder(WorkerObserver):
    """Records the hooks it receives, in order."""

    def __init__(self, transport: InMemoryTransport) -> None:
        self.transport, self.calls = transport, list[tuple[Any, ...]]()

    async def on_start(self, transport: Transport) -> None:
        self.calls.append(("start",))

    def on_batch_end(self, tp: TopicPartition, binding: Binding, messages: int, result: BatchResult,
                     lag: int | None) -> None:  # fmt: skip
        self.calls.append(("batch_end", tp, messages, lag))

    async def on_batch_error(self, tp: TopicPartition, first: int, stage: str, error: BaseException) -> None:
        self.calls.append(("batch_error", tp, first, stage, type(error).__name__, time.monotonic()))

    def on_batch_given_up(self, tp: TopicPartition, first: int, error: BaseException) -> None:
        self.calls.append(("given_up", tp, first))

    def on_commit(self, tp: TopicPartition, next_offset: int, latency: float) -> None:
        # the commit is recorded by the transport before the hook: outputs were acknowledged before it
        self.calls.append(("commit", tp, next_offset, self.transport.committed.get(tp)))

    async def on_assign(self, assigned: set[TopicPartition]) -> None:
        self.calls.append(("assign", frozenset(assigned)))

    async def on_revoke(self, revoked: set[TopicPartition]) -> None:
        self.calls.append(("revoke", frozenset(revoked), dict(self.transport.committed)))

    async def on_stopping(self) -> None:
        self.calls.append(("stopping",))

    def on_stopped(self) -> None:
        self.calls.append(("stopped",))

    def kinds(self) -> list[str]:
        return [c[0] for c in self.calls]


def test_routes_each_record_once_and_commits_after_delivery() -> None:
    async def scenario() -> None:
        transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 2})
        sent0, bad0 = feed(transport, 30, 0, seed=1)
        sent1, bad1 = feed(transport, 20, 1, seed=2)
        recorder = Recorder(transport)
        worker = worker_for(transport, observers=(recorder,))
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {TP0: 30, TP1: 20})
        valid = sorted(m.value or b"" for m in (*sent0, *sent1) if m.offset not in (bad0 if m.partition == 0 else bad1))
        validated = transport.records(f"{TOPIC}.validated")
        quarantined = transport.records(f"{TOPIC}.quarantine")
        assert sorted(m.value or b"" for m in validated) == valid  # byte for byte, each once
        assert len(quarantined) == len(bad0) + len(bad1) > 0
        assert {error_class(m) for m in quarantined} == {b"contract.violation"}
        assert transport.records(f"{TOPIC}.dlq") == []
        assert worker.committed == {TP0: 30, TP1: 20}
        phases = {orjson.loads(m.value or b"").get("phase") for m in transport.records(EVENTS)}
        assert {"started", "partitions_assigned", None} <= phases  # None: the batch summaries
        kinds = recorder.kinds()
        assert kinds[:2] == ["start", "assign"] and kinds[-2:] == ["stopping", "stopped"]
        assert ("batch_end", TP0, 30, 0) in recorder.calls and ("commit", TP0, 30, 30) in recorder.calls

    run(scenario)


def test_offsets_are_committed_only_after_every_output_is_acknowledged() -> None:
    async def scenario() -> None:
        transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 1})
        feed(transport, 10, 0)
        transport.hold_acks()
        worker = worker_for(transport)
        async with running(worker):
            await transport.wait_for(lambda: transport.held > 0)
            await asyncio.sleep(0.2)  # many poll cycles: nothing acknowledged, so nothing may be committed
            assert transport.commits == [] and worker.committed == {}
            assert transport.records(f"{TOPIC}.validated") == [] and transport.records(f"{TOPIC}.quarantine") == []
            assert transport.ack() > 0
            await transport.wait_for(lambda: transport.committed == {TP0: 10})
        assert len(transport.records(f"{TOPIC}.validated")) + len(transport.records(f"{TOPIC}.quarantine")) == 10

    run(scenario)


def test_a_failed_delivery_is_read_again_and_never_committed_before() -> None:
    async def scenario() -> None:
        transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 1})
        feed(transport, 10, 0)
        transport.hold_acks()
        recorder = Recorder(transport)
        worker = worker_for(transport, observers=(recorder,))
        async with running(worker):
            await transport.wait_for(lambda: transport.held > 0)
            transport.fail_held(ValueError("record too large"))  # not "broker away": counts as an attempt
            await transport.wait_for(lambda: transport.committed == {TP0: 10})
        errors = [c for c in recorder.calls if c[0] == "batch_error"]
        assert [(c[1], c[2], c[3], c[4]) for c in errors] == [(TP0, 0, "produce", "ValueError")]
        assert (TP0, 0) in transport.seeks and transport.commits == [{TP0: 10}]
        outputs = transport.records(f"{TOPIC}.validated") + transport.records(f"{TOPIC}.quarantine")
        assert len(outputs) == 10  # the failed submission appended nothing; the retry delivered each once

    run(scenario)


class _Failing:
    """A binding whose ``process`` raises the first ``times`` calls (forever when None), else delegates."""

    def __init__(self, inner: Binding, times: int | None) -> None:
        self.inner, self.times, self.calls = inner, times, list[float]()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def process(self, messages: Any, *, worker_id: str) -> BatchResult:
        self.calls.append(time.monotonic())
        if self.times is None or len(self.calls) <= self.times:
            raise RuntimeError("engine exploded")
        return self.inner.process(messages, worker_id=worker_id)


def test_a_batch_failing_every_retry_is_dead_lettered_after_backoff() -> None:
    async def scenario() -> None:
        transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 1})
        sent, _ = feed(transport, 8, 0)
        recorder = Recorder(transport)
        worker = worker_for(transport, observers=(recorder,), batch_retries=2)
        failing = _Failing(worker.bindings[TOPIC], None)
        worker.bindings[TOPIC] = failing  # type: ignore[assignment]
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {TP0: 8})
        assert len(failing.calls) == 3  # the first attempt and batch_retries=2 retries; then given up unprocessed
        gaps = [b - a for a, b in zip(failing.calls, failing.calls[1:], strict=False)]
        assert gaps[0] >= 0.02 * 0.9 and gaps[1] >= 0.04 * 0.9  # retry_backoff_ms doubled per attempt
        dead = transport.records(f"{TOPIC}.dlq")
        assert [m.value for m in dead] == [m.value for m in sent]  # every message, unchanged, in order
        assert {error_class(m) for m in dead} == {b"internal.RuntimeError"}
        assert transport.records(f"{TOPIC}.validated") == [] and transport.records(f"{TOPIC}.quarantine") == []
        assert transport.seeks == [(TP0, 0), (TP0, 0)] and transport.paused == set()
        assert ("given_up", TP0, 0) in recorder.calls
        assert worker.metrics.dead_lettered_batches.labels(TOPIC)._value.get() == 1

    run(scenario)


def test_a_batch_failing_once_is_retried_and_routed_normally() -> None:
    async def scenario() -> None:
        transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 1})
        _, bad = feed(transport, 8, 0)
        worker = worker_for(transport, batch_retries=2)
        failing = _Failing(worker.bindings[TOPIC], 1)
        worker.bindings[TOPIC] = failing  # type: ignore[assignment]
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {TP0: 8})
        assert len(failing.calls) == 2 and transport.records(f"{TOPIC}.dlq") == []
        assert len(transport.records(f"{TOPIC}.validated")) == 8 - len(bad)
        assert len(transport.records(f"{TOPIC}.quarantine")) == len(bad)

    run(scenario)


def test_revoke_drains_in_flight_batches_and_commits_before_release() -> None:
    async def scenario() -> None:
        transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 2})
        feed(transport, 12, 0)
        feed(transport, 7, 1, seed=3)
        recorder = Recorder(transport)
        worker = worker_for(transport, observers=(recorder,))
        async with running(worker):
            await transport.wait_for(lambda: worker.committed == {TP0: 12, TP1: 7})
            feed(transport, 5, 0, seed=4)
            transport.hold_acks()
            await transport.wait_for(lambda: transport.held > 0)  # a batch of partition 0 is in flight
            transport.rebalance({TP1})  # partition 0 goes to another member
            await asyncio.sleep(0.1)  # the revoke callback waits for the acknowledgements...
            assert transport.assignment == {TP0, TP1} and transport.committed[TP0] == 12
            transport.ack()  # ...which arrive: it commits, then releases the partition
            await transport.wait_for(lambda: transport.assignment == {TP1})
            feed(transport, 3, 0, seed=5)  # no longer ours: not read
            await asyncio.sleep(0.1)
        revokes = [c for c in recorder.calls if c[0] == "revoke" and TP0 in c[1]]
        assert len(revokes) == 1 and revokes[0][2][TP0] == 17  # committed before the partition was released
        assert transport.committed[TP0] == 17 and worker.committed[TP0] == 17
        assert all(TP0 not in c for c in transport.commits[transport.commits.index({TP0: 17}) + 1 :])
        sources = [m for t in ("validated", "quarantine") for m in transport.records(f"{TOPIC}.{t}")]
        assert len(sources) == 12 + 7 + 5  # each record once: none lost, none redone

    run(scenario)


def test_rebalance_moves_partitions_and_resumes_from_the_committed_offsets() -> None:
    async def scenario() -> None:
        transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 2})
        feed(transport, 6, 0)
        recorder = Recorder(transport)
        worker = worker_for(transport, observers=(recorder,))
        async with running(worker):
            await transport.wait_for(lambda: worker.committed == {TP0: 6})
            transport.rebalance({TP1})
            await transport.wait_for(lambda: transport.assignment == {TP1})
            feed(transport, 4, 0, seed=2)
            feed(transport, 3, 1, seed=3)
            await transport.wait_for(lambda: transport.committed.get(TP1) == 3)
            await asyncio.sleep(0.05)
            assert transport.committed[TP0] == 6  # partition 0's new records wait for their new owner
            transport.rebalance({TP0, TP1})
            await transport.wait_for(lambda: transport.committed == {TP0: 10, TP1: 3})
        assigns = [set(c[1]) for c in recorder.calls if c[0] == "assign"]
        assert assigns == [{TP0, TP1}, {TP1}, {TP0, TP1}]
        assert worker.lifecycle.generation == 3
        outputs = [m for t in ("validated", "quarantine") for m in transport.records(f"{TOPIC}.{t}")]
        assert len(outputs) == 6 + 4 + 3  # nothing read twice across the moves
        phases = [orjson.loads(m.value or b"").get("phase") for m in transport.records(EVENTS)]
        assert phases.count("partitions_assigned") == 3 and phases.count("partitions_revoked") == 2

    run(scenario)


def test_a_refused_commit_is_retried_with_the_next_one() -> None:
    async def scenario() -> None:
        transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 1})
        feed(transport, 5, 0)
        transport.commit_failures.append(CommitRefusedError("rebalance in progress"))
        worker = worker_for(transport)
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {TP0: 5})
        assert not transport.commit_failures and transport.commits == [{TP0: 5}]

    run(scenario)


def test_exactly_once_commits_outputs_and_offsets_together() -> None:
    async def scenario() -> None:
        transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 1})
        _, bad = feed(transport, 9, 0)
        worker = worker_for(transport, exactly_once=True)
        async with running(worker):
            await transport.wait_for(lambda: transport.committed == {TP0: 9})
        assert len(transport.records(f"{TOPIC}.validated")) == 9 - len(bad)
        assert worker.committed == {TP0: 9}

    run(scenario)


def test_a_missing_source_topic_is_reported_not_consumed() -> None:
    async def scenario() -> None:
        transport = InMemoryTransport(sources=[TOPIC])
        worker = worker_for(transport)
        transport.observer = worker.observers  # health and metrics hear of the subscription
        async with running(worker):
            await transport.wait_for(lambda: any(b"binding_failed" in (m.value or b"") for m in
                                                 transport.records(EVENTS)))  # fmt: skip
            status, body = worker.health.report()
            assert status == 503 and body["problems"] == {TOPIC: "source topic missing"}
        assert transport.subscribed == () and transport.missing == (TOPIC,) and transport.commits == []

    run(scenario)
