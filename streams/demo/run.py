"""``qstreams demo``: the whole product on one machine, with one command.

1. use ``KAFKA_BOOTSTRAP_SERVERS`` or start the dev broker (Apache Kafka from Maven jars);
2. create the example topics (the predictions' labels topic co-partitioned with the predictions) and
   start a stream worker (``qstreams worker``) on the example contracts and a performance joiner
   (``qstreams performance run``) on the predictions contract, two child processes;
3. run a feature producer and a prediction producer at a steady rate, with scheduled
   incidents (contract violations, undecodable messages, an upstream schema change, a gradual
   covariate drift, and a new model version whose confidence collapses — the last two judged per
   window against reference profiles built at start from clean traffic), and a labels producer
   sending the actual outcome of most predictions a few seconds later (:mod:`streams.demo.labels`),
   which the joiner turns into realized accuracy per model version and window;
4. follow the quality-event topic and show progress live (or one line every few
   seconds with ``--headless``);
5. drain, stop everything, and print per incident whether, how and how fast it was detected.

Ctrl-C stops it cleanly at any point: producers, the worker, the joiner and the broker are stopped
and no process is left behind. Exit code 0 when every incident was detected.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from streams.consumers.tracker import EventTracker
from streams.demo.labels import LABELS_TOPIC, LabelQueue, produce_labels
from streams.demo.processes import check_alive, child_process, joiner_env, tail, worker_env
from streams.demo.producers import FEATURES_TOPIC, PREDICTIONS_TOPIC, ProducerStats, produce
from streams.demo.references import PREDICTIONS_CONTRACT, with_references
from streams.demo.scenario import Incident, default_schedule
from streams.demo.view import DriftWindows, evaluate, live_view, progress_line, summary
from streams.errors import BrokerError, StreamsError
from streams.events.types import EventType
from streams.settings import normalize_bootstrap

__all__ = ["DemoOptions", "run_demo"]

EVENTS_TOPIC = "dq.quality-events.v1"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    duration_s: float = 90.0
    rate: float = 200.0  # records/s per producer
    headless: bool = False
    contracts: Path = Path("contracts")
    mode: str = "gate"
    broker: str | None = None
    partitions: int = 3
    drain_timeout_s: float = 30.0


def run_demo(options: DemoOptions, console: Console | None = None) -> int:
    """Run the demo; return the process exit code (0 all incidents detected, 1 not, 130 interrupted)."""
    out = console or Console()
    if not options.contracts.exists():
        raise StreamsError(
            f"the example contracts directory {options.contracts} does not exist; run the demo from the "
            "repository root or pass --contracts"
        )
    with contextlib.ExitStack() as stack:
        bootstrap = options.broker or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if bootstrap:
            try:  # kafka://host:port and lists, as every broker option takes them
                bootstrap = normalize_bootstrap(bootstrap)
            except ValueError as exc:
                raise StreamsError(str(exc)) from None
        if bootstrap:
            out.print(f"using Kafka at {bootstrap}")
        else:
            out.print("starting a local Apache Kafka broker (KRaft, from Maven jars) ...")
            from streams.dev.broker import start_broker

            broker = start_broker(port=0)
            stack.callback(broker.stop)
            bootstrap = broker.bootstrap_servers
            out.print(f"Kafka is up at {bootstrap}")
        _ensure_topics(bootstrap, [FEATURES_TOPIC, PREDICTIONS_TOPIC, EVENTS_TOPIC], options.partitions)
        # the labels join needs co-partitioned topics: as many label partitions as prediction partitions
        _ensure_topics(bootstrap, [LABELS_TOPIC], len(_partitions(bootstrap, PREDICTIONS_TOPIC)) or options.partitions)
        app_id = f"qstreams-demo-{uuid.uuid4().hex[:8]}"
        # the demo is about now: a broker reused from earlier runs keeps their records, skip them
        _commit_group_at_end(bootstrap, app_id, [FEATURES_TOPIC, PREDICTIONS_TOPIC])
        workdir = Path(tempfile.mkdtemp(prefix="qstreams-demo-"))
        options = replace(options, contracts=with_references(options.contracts, workdir))
        since_ms = int(time.time() * 1000) - 1000
        env = worker_env(bootstrap, app_id, options.partitions, EVENTS_TOPIC, options.contracts, options.mode)
        worker = stack.enter_context(child_process(["worker"], env, workdir / "worker.log"))
        out.print(f"worker started (pid {worker.pid}, mode {options.mode}, log {workdir / 'worker.log'})")
        contract = options.contracts / PREDICTIONS_CONTRACT
        joiner = stack.enter_context(
            child_process(
                ["performance", "run", "--contract", str(contract), "--joiner-id", "demo-performance"],
                joiner_env(bootstrap, app_id, options.partitions, EVENTS_TOPIC),
                workdir / "performance.log",
            )
        )
        out.print(f"performance joiner started (pid {joiner.pid}, log {workdir / 'performance.log'})")
        children = Children(worker, joiner, workdir)
        try:
            return asyncio.run(_main(bootstrap, options, out, children, since_ms))
        except KeyboardInterrupt:
            out.print("\ninterrupted: stopping producers, worker, joiner and broker ...")
            return 130


@dataclass(frozen=True, slots=True)
class Children:
    """The demo's child processes and where their logs are."""

    worker: subprocess.Popen[bytes]
    joiner: subprocess.Popen[bytes]
    workdir: Path

    def check(self) -> None:
        """:class:`StreamsError` with its log's end when the worker or the joiner has exited."""
        check_alive(self.worker, "worker", self.workdir / "worker.log")
        check_alive(self.joiner, "performance joiner", self.workdir / "performance.log")


def _ensure_topics(bootstrap: str, topics: list[str], partitions: int) -> None:
    from streams.kafka.topics import create_topics
    from streams.settings import load_settings

    settings = load_settings(bootstrap_servers=bootstrap, topic_partitions=partitions, app_id="qstreams-demo")
    deadline = time.monotonic() + 60
    while True:
        try:
            create_topics(settings, topics)
            return
        except BrokerError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _partitions(bootstrap: str, topic: str) -> set[int]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return set(consumer.partitions_for_topic(topic) or ())
    finally:
        consumer.close()


def _commit_group_at_end(bootstrap: str, group: str, topics: list[str]) -> None:
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        consumer.seek_to_end(*tps)
        consumer.commit({tp: OffsetAndMetadata(consumer.position(tp), "", -1) for tp in tps})
    finally:
        consumer.close()


async def _follow_events(
    bootstrap: str, tracker: EventTracker, ready: asyncio.Event, since_ms: int, drift: DriftWindows
) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        parts = await asyncio.to_thread(_partitions, bootstrap, EVENTS_TOPIC)
        if not parts:
            raise StreamsError(f"the quality-event topic {EVENTS_TOPIC} has no partitions")
        tps = [TopicPartition(EVENTS_TOPIC, p) for p in sorted(parts)]
        consumer.assign(tps)
        # every event since the worker was started, however late this consumer gets going
        starts = await consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
        for tp in tps:
            found = starts.get(tp)
            if found is None:
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, found.offset)
        ready.set()
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=1000)
            now = dt.datetime.now(dt.UTC)
            for records in batches.values():
                for rec in records:
                    try:
                        _fold(rec, tracker, drift, now, since_ms)
                    except Exception:  # not a quality event, or data no consumer reads: ignore, as consumers should
                        continue
    finally:
        await consumer.stop()


def _fold(rec: Any, tracker: EventTracker, drift: DriftWindows, now: dt.datetime, since_ms: int) -> None:
    """One consumed record into the demo's tracker and drift view (raises on a record that is not a quality event)."""
    from streams.events.codec import event_data, from_kafka

    event = from_kafka(rec.key, rec.value, list(rec.headers or ()))
    data = event_data(event)
    if not isinstance(data, dict):
        raise TypeError("a quality event's data is a JSON object")
    if event.get_type() == EventType.MODEL_PERFORMANCE and _before(data, since_ms):
        return  # the joiner read a reused broker's earlier predictions: not this run's
    ext = event.get_extension("severity")
    tracker.add(event.get_type(), event.get_id(), data, str(ext) if ext else None, now)
    drift.add(event.get_type(), data)


def _before(data: dict[str, object], since_ms: int) -> bool:
    """Whether an event's window ended before ``since_ms`` (epoch ms)."""
    window = data.get("window")
    end = window.get("end") if isinstance(window, dict) else None
    try:
        moment = dt.datetime.fromisoformat(str(end).replace("Z", "+00:00"))
    except ValueError:
        return False
    return moment.timestamp() * 1000 < since_ms


async def _main(bootstrap: str, options: DemoOptions, out: Console, children: Children, since_ms: int) -> int:
    from aiokafka import AIOKafkaProducer

    tracker = EventTracker()
    stats = ProducerStats()
    incidents = default_schedule(options.duration_s)
    ready = asyncio.Event()
    drift_windows = DriftWindows()
    follower = asyncio.create_task(_follow_events(bootstrap, tracker, ready, since_ms, drift_windows))
    await asyncio.wait_for(ready.wait(), 60)
    workdir = children.workdir
    if not await _wait_worker_ready(tracker, children.worker, 90):
        out.print(f"[red]the worker did not start; its log ({workdir / 'worker.log'}) ends with:[/]")
        out.print(tail(workdir / "worker.log"), markup=False, highlight=False)
        follower.cancel()
        return 1
    from streams.kafka.connection import plain_producer_config
    from streams.settings import load_settings

    settings = load_settings(bootstrap_servers=bootstrap)
    config = plain_producer_config(settings, "qstreams-demo", linger_ms=20, acks="all", enable_idempotence=True)
    producer = AIOKafkaProducer(**config)
    await producer.start()
    t0 = time.monotonic()
    labels = LabelQueue(seed=29)
    tasks = [
        asyncio.create_task(
            produce(
                producer,
                s,
                rate=options.rate,
                duration_s=options.duration_s,
                incidents=incidents,
                stats=stats,
                seed=seed,
                started=t0,
                labels=labels if s == "predictions" else None,
            )
        )
        for s, seed in (("features", 11), ("predictions", 23))
    ]
    predictions = tasks[1]
    tasks.append(asyncio.create_task(produce_labels(producer, labels, stats, done=predictions.done)))
    info = f"mode {options.mode}"
    try:
        if options.headless:
            next_line = 0.0
            while not all(t.done() for t in tasks):
                elapsed = time.monotonic() - t0
                if elapsed >= next_line:
                    out.print(progress_line(tracker, stats, elapsed), markup=False, highlight=False)
                    next_line += 5.0
                children.check()
                await asyncio.sleep(0.25)
        else:
            with Live(console=out, refresh_per_second=4, transient=False) as live:
                while not all(t.done() for t in tasks):
                    elapsed = time.monotonic() - t0
                    live.update(live_view(tracker, incidents, stats, elapsed, options.duration_s, info))
                    children.check()
                    await asyncio.sleep(0.25)
        for t in tasks:
            t.result()  # surface producer errors
        out.print("producers done; waiting for the worker and the performance joiner to drain ...")
        drift = _last_end(incidents, stats, "covariate_drift")
        collapse = _last_end(incidents, stats, "confidence_collapse")
        await _drain(tracker, stats, options.drain_timeout_s, drift_until=drift, confidence_until=collapse,
                     performance_until=stats.last_sent.get("predictions"))  # fmt: skip
    finally:
        for t in tasks:
            t.cancel()
        await producer.stop()
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await follower
    results = evaluate(incidents, tracker, stats)
    summary(results, tracker, out, drift_windows, stats)
    return 0 if all(r.detection.detected for r in results) else 1


async def _wait_worker_ready(tracker: EventTracker, worker: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            return False
        if any(e.get("phase") == "partitions_assigned" for e in tracker.lifecycle):
            return True
        await asyncio.sleep(0.2)
    return False


def _last_end(incidents: list[Incident], stats: ProducerStats, kind: str) -> dt.datetime | None:
    """When the last record of an incident of ``kind`` was produced (None if none was)."""
    ends = [stats.windows[i][1] for i, inc in enumerate(incidents) if inc.kind == kind and i in stats.windows]
    return max(ends, default=None)


def _judged(through: dt.datetime | None, until: dt.datetime | None) -> bool:
    return until is None or (through is not None and through > until)


async def _drain(
    tracker: EventTracker,
    stats: ProducerStats,
    timeout: float,
    *,
    drift_until: dt.datetime | None = None,
    confidence_until: dt.datetime | None = None,
    performance_until: dt.datetime | None = None,
) -> None:
    """Wait until the worker has reported every produced record and, given ``drift_until`` /
    ``confidence_until`` / ``performance_until``, judged the window holding that moment for distribution
    drift / prediction confidence / realized performance (windows close after the idle delay; realized
    performance also waits for the labels' horizon), or the timeout passes."""
    deadline = time.monotonic() + timeout
    sent = stats.sent["features"] + stats.sent["predictions"]
    while time.monotonic() < deadline:
        judged = (
            _judged(tracker.drift_through, drift_until)
            and _judged(tracker.confidence_through, confidence_until)
            and _judged(tracker.performance_through, performance_until)
        )
        if sum(tracker.totals().values()) >= sent and judged:
            return
        await asyncio.sleep(0.25)
