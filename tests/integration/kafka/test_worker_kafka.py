"""The batch worker against a real broker: routing, rebalances, crashes, broker restarts, bad contracts.

Every test has its own source topic, consumer group and events topic. Input
messages carry a unique key ``in-<i>`` that the worker keeps on every output, so
each input can be found in exactly one of ``.validated`` / ``.quarantine`` /
``.dlq``; after a crash or rebalance a key seen twice is a duplicate (at-least-once),
which the tests count and print (run with ``-s`` to see them).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[3]
CONTRACT = ROOT / "contracts" / "card_transactions.odcs.yaml"
SUMMARY = "io.qualitystreams.batch.summary.v1"
FAULTS = {
    "null_required": 0.02, "out_of_range": 0.02, "bad_pattern": 0.02, "invalid_enum": 0.02,
    "wrong_type": 0.02, "cross_field": 0.02, "missing_field": 0.02, "unknown_field": 0.02,
}  # fmt: skip
Msg = tuple[bytes, bytes, list[tuple[str, bytes]]]


# --- helpers ------------------------------------------------------------------------------------------------


def contract_for(tmp_path: Path, topic: str) -> Path:
    """The example feature contract bound to ``topic`` (its ``physicalName``), in its own directory."""
    directory = tmp_path / "contracts"
    directory.mkdir(exist_ok=True)
    text = CONTRACT.read_text().replace("physicalName: features.card-transactions.v1", f"physicalName: {topic}")
    (directory / "features.odcs.yaml").write_text(text)
    return directory


def dataset(n: int, seed: int = 7) -> tuple[list[Msg], int, int]:
    """``n`` feature records with faults plus every kind of undecodable message: (messages, invalid, undecodable)."""
    from streams.testing import generate_feature_records, undecodable_messages

    batch = generate_feature_records(n, seed=seed, faults=FAULTS)
    values: list[tuple[bytes, list[tuple[str, bytes]]]] = [(orjson.dumps(r), []) for r in batch.records]
    bad = [(m.value or b"", list(m.headers)) for _, m in undecodable_messages(max_message_bytes=50_000)]
    step = max(len(values) // (len(bad) + 1), 1)
    for i, item in enumerate(bad):  # spread them over the stream
        values.insert((i + 1) * step, item)
    msgs = [(f"in-{i}".encode(), v, h) for i, (v, h) in enumerate(values)]
    return msgs, len(batch.expected_invalid), len(bad)


async def produce(bootstrap: str, topic: str, msgs: Iterable[Msg]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_request_size=4_000_000)
    await producer.start()
    try:
        futures = [await producer.send(topic, v, key=k, headers=h) for k, v, h in msgs]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The partitions of ``topic`` without auto-creating it (a metadata request for all topics)."""
    cluster = await consumer._client.fetch_all_metadata()
    return [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or ())]


@contextlib.asynccontextmanager
async def started(bootstrap: str, **config: Any) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **config)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def read_topic(bootstrap: str, topic: str, *, committed_only: bool = False) -> list[Any]:
    """Every record of ``topic`` up to its current end offsets (no group)."""
    isolation = "read_committed" if committed_only else "read_uncommitted"
    async with started(bootstrap, isolation_level=isolation, max_partition_fetch_bytes=4 << 20) as consumer:
        tps = await partitions(consumer, topic)
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: list[Any] = []
        deadline = time.monotonic() + 30
        while [tp for tp in tps if await consumer.position(tp) < end[tp]] and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(records)
        return out


async def list_topics(bootstrap: str) -> set[str]:
    async with started(bootstrap) as consumer:
        return set(await consumer.topics())


async def committed_total(bootstrap: str, group: str, topic: str) -> tuple[int, int]:
    """(offsets committed by ``group``, end offsets) summed over the partitions of ``topic``."""
    async with started(bootstrap, group_id=group) as consumer:
        tps = await partitions(consumer, topic)
        end = await consumer.end_offsets(tps)
        return sum([await consumer.committed(tp) or 0 for tp in tps]), sum(end.values())


async def wait_committed(
    bootstrap: str, group: str, topic: str, *, at_least: int | None = None, timeout: float = 90
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        done, end = await committed_total(bootstrap, group, topic)
        if done >= (end if at_least is None else at_least) and end > 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"group {group} committed {done} of {end} offsets of {topic} within {timeout:.0f} s")
        await asyncio.sleep(0.3)


def settings_for(bootstrap: str, contracts: Path, group: str, events: str, **more: Any) -> Settings:
    return Settings(
        bootstrap_servers=bootstrap, contracts_dir=contracts, app_id=group, events_topic=events,
        batch_max_records=500, batch_max_latency_ms=50, max_message_bytes=50_000, web_port=0,
        topic_check_interval_s=1.0, retry_backoff_ms=100, **({"batch_events": True} | more),
    )  # fmt: skip


@dataclass(frozen=True)
class Stream:
    """A fresh feature topic on the test broker, its consumer group and the settings of a worker bound to it."""

    bootstrap: str
    topic: str
    group: str
    settings: Settings


@pytest.fixture
def feature_stream(
    kafka_broker: Any, kafka_topic_factory: Callable[..., str], kafka_group_id: str, tmp_path: Path
) -> Callable[..., Stream]:
    """The prologue of the worker tests: ``feature_stream(partitions, **settings)``."""

    def make(partitions: int, **more: Any) -> Stream:
        bootstrap = kafka_broker.bootstrap_servers
        topic = kafka_topic_factory(partitions=partitions, prefix="features")
        settings = settings_for(bootstrap, contract_for(tmp_path, topic), kafka_group_id, f"{topic}.events", **more)
        return Stream(bootstrap, topic, kafka_group_id, settings)

    return make


def make_worker(settings: Settings, worker_id: str = "w1") -> Any:
    from streams.kafka.worker import BatchWorker, build_bindings

    return BatchWorker(settings, build_bindings(settings), worker_id=worker_id)


async def outputs(bootstrap: str, topic: str, *, committed_only: bool = False) -> dict[str, list[Any]]:
    return {
        kind: await read_topic(bootstrap, f"{topic}.{kind}", committed_only=committed_only)
        for kind in ("validated", "quarantine", "dlq")
    }


def check_routing(
    out: dict[str, list[Any]], msgs: list[Msg], *, invalid: int, undecodable: int, exact: bool, gate: bool = True
) -> int:
    """Every input key is in exactly one output kind (valid ones nowhere in monitor mode); returns the duplicates."""
    where: dict[bytes, set[str]] = collections.defaultdict(set)
    seen: collections.Counter[bytes] = collections.Counter()
    for kind, records in out.items():
        for r in records:
            where[r.key].add(kind)
            seen[r.key] += 1
    keys = {k for k, _, _ in msgs}
    if not gate:
        assert not out["validated"], "monitor mode forwards nothing"
        where.update({k: {"validated"} for k in keys - set(where)})
    lost = keys - set(where)
    assert not lost, f"{len(lost)} input messages are in no output topic, e.g. {sorted(lost)[:5]}"
    assert set(where) == keys, "outputs carry keys that were never produced"
    split = {k: kinds for k, kinds in where.items() if len(kinds) > 1}
    assert not split, f"messages routed to several outputs: {list(split.items())[:5]}"
    counts = collections.Counter(next(iter(kinds)) for kinds in where.values())
    assert counts["dlq"] == undecodable
    assert counts["quarantine"] == invalid
    assert counts["validated"] == len(msgs) - invalid - undecodable
    duplicates = sum(n - 1 for n in seen.values())
    if exact:
        assert duplicates == 0, f"{duplicates} duplicate outputs without any crash"
    return duplicates


def source_position(records: Iterable[Any]) -> set[tuple[int, int]]:
    """(source partition, offset) from the dead-letter headers of quarantined / dead-lettered records."""
    heads = [dict(r.headers) for r in records]
    return {(int(h["qstreams.errors.partition"]), int(h["qstreams.errors.offset"])) for h in heads}


def summary_counts(events: list[Any], topic: str) -> collections.Counter[str]:
    total: collections.Counter[str] = collections.Counter()
    for e in events:
        if dict(e.headers).get("ce_type") == SUMMARY.encode():
            data = orjson.loads(e.value)
            if data["topic"] == topic:
                total.update(data["counts"])
    return total


# --- in-process workers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["gate", "monitor"])
def test_routes_every_message_to_exactly_one_output(mode: str, feature_stream: Callable[..., Stream]) -> None:
    stream = feature_stream(3, mode=mode)
    bootstrap, topic, kafka_group_id, settings = stream.bootstrap, stream.topic, stream.group, stream.settings
    msgs, invalid, undecodable = dataset(3000)

    async def scenario() -> None:
        await produce(bootstrap, topic, msgs)
        worker = make_worker(settings)
        task = asyncio.create_task(worker.run())
        await wait_committed(bootstrap, kafka_group_id, topic)
        worker.stop()
        await task
        out = await outputs(bootstrap, topic)
        gate = mode == "gate"
        check_routing(out, msgs, invalid=invalid, undecodable=undecodable, exact=True, gate=gate)
        assert gate == (f"{topic}.validated" in await list_topics(bootstrap))
        assert len(source_position(out["quarantine"] + out["dlq"])) == invalid + undecodable
        counts = summary_counts(await read_topic(bootstrap, settings.events_topic), topic)
        assert counts == {
            "valid": len(msgs) - invalid - undecodable,
            "quarantined": invalid,
            "dead_lettered": undecodable,
        }

    asyncio.run(scenario())


def test_rebalance_mid_stream_loses_nothing(feature_stream: Callable[..., Stream]) -> None:
    stream = feature_stream(4)
    bootstrap, topic, kafka_group_id, settings = stream.bootstrap, stream.topic, stream.group, stream.settings
    msgs, invalid, undecodable = dataset(4000, seed=11)
    half = len(msgs) // 2

    async def scenario() -> None:
        first, second = make_worker(settings, "w1"), make_worker(settings, "w2")
        await produce(bootstrap, topic, msgs[:half])
        task = asyncio.create_task(first.run())
        await wait_committed(bootstrap, kafka_group_id, topic, at_least=half // 2)
        joined = asyncio.create_task(second.run())
        await _trickle(bootstrap, topic, msgs[half:], seconds=6.0)
        await wait_committed(bootstrap, kafka_group_id, topic)
        first.stop()
        second.stop()
        await asyncio.gather(task, joined)
        assert first.committed and second.committed, "both workers got partitions"
        out = await outputs(bootstrap, topic)
        duplicates = check_routing(out, msgs, invalid=invalid, undecodable=undecodable, exact=False)
        print(
            f"\nrebalance: {duplicates} duplicate outputs of {len(msgs)} inputs; partitions committed by "
            f"w1 {sorted(tp.partition for tp in first.committed)}, w2 {sorted(tp.partition for tp in second.committed)}"
        )

    asyncio.run(scenario())


def test_broker_restart_mid_run(
    owned_kafka_broker: Any, feature_stream: Callable[..., Stream], caplog: pytest.LogCaptureFixture
) -> None:
    stream = feature_stream(2)
    bootstrap, topic, kafka_group_id, settings = stream.bootstrap, stream.topic, stream.group, stream.settings
    msgs, invalid, undecodable = dataset(2000, seed=5)
    half = len(msgs) // 2
    caplog.set_level(logging.WARNING, logger="streams")
    worker = make_worker(settings)
    loop = asyncio.new_event_loop()
    # The worker runs on its own loop in a thread; the broker is restarted from the main thread
    # (the dev broker dies with the thread that started it: PR_SET_PDEATHSIG is per thread).
    runner = threading.Thread(target=loop.run_until_complete, args=(worker.run(),))
    asyncio.run(produce(bootstrap, topic, msgs[:half]))
    runner.start()
    try:
        asyncio.run(wait_committed(bootstrap, kafka_group_id, topic))
        owned_kafka_broker.restart()
        asyncio.run(produce(bootstrap, topic, msgs[half:]))
        asyncio.run(wait_committed(bootstrap, kafka_group_id, topic, timeout=120))
    finally:
        loop.call_soon_threadsafe(worker.stop)
        runner.join(60)
        loop.close()
    out = asyncio.run(outputs(bootstrap, topic))
    duplicates = check_routing(out, msgs, invalid=invalid, undecodable=undecodable, exact=False)
    print(f"\nbroker restart: {duplicates} duplicate outputs of {len(msgs)} inputs")
    assert any("unreachable, retrying in" in r.getMessage() for r in caplog.records), "no broker retry was logged"


class Exploding:
    """A binding whose processing always raises (a bug, not bad data)."""

    def __init__(self, inner: Any) -> None:
        self.topic, self.contract, self.schema, self.calls = inner.topic, inner.contract, inner.schema, 0
        self.stages: list[Any] = []  # as a Binding without stream time

    def process(self, messages: Any, *, worker_id: str) -> Any:
        self.calls += 1
        raise RuntimeError("boom")


def test_failing_binding_and_missing_topic_do_not_stop_the_others(
    kafka_broker: Any, kafka_topic_factory: Callable[..., str], kafka_group_id: str, tmp_path: Path,
    unique_name: Callable[[str], str],
) -> None:  # fmt: skip
    from streams.kafka.worker import BatchWorker
    from streams.pipeline.binding import Binding

    bootstrap = kafka_broker.bootstrap_servers
    good, bad, late = kafka_topic_factory(partitions=2), kafka_topic_factory(partitions=1), unique_name("late")
    msgs, invalid, undecodable = dataset(600, seed=2)
    settings = settings_for(bootstrap, contract_for(tmp_path, good), kafka_group_id, f"{good}.events", batch_retries=2)
    from streams.kafka.worker import build_bindings

    (base,) = build_bindings(settings)
    exploding = Exploding(Binding(base.contract, replace(base.schema, topic=bad), settings))
    bindings = [base, exploding, Binding(base.contract, replace(base.schema, topic=late), settings)]
    worker = BatchWorker(settings, bindings, worker_id="w1")  # type: ignore[arg-type]

    async def scenario() -> None:
        await produce(bootstrap, good, msgs)
        await produce(bootstrap, bad, msgs[:100])
        task = asyncio.create_task(worker.run())
        await wait_committed(bootstrap, kafka_group_id, good)
        assert "source topic missing" in worker.health.problems()[late]
        # the failing binding gives up first: the rebalance the late topic brings cannot re-read its batch
        await wait_committed(bootstrap, kafka_group_id, bad, timeout=60)
        await produce(bootstrap, late, msgs[:50])  # the broker auto-creates it here; the worker picks it up
        await wait_committed(bootstrap, kafka_group_id, late, timeout=60)
        worker.stop()
        await task
        check_routing(await outputs(bootstrap, good), msgs, invalid=invalid, undecodable=undecodable, exact=True)
        dead = await read_topic(bootstrap, f"{bad}.dlq")
        assert sorted(r.key for r in dead) == sorted(k for k, _, _ in msgs[:100])
        assert {dict(r.headers)["qstreams.errors.class"] for r in dead} == {b"internal.RuntimeError"}
        assert exploding.calls == 3  # the first attempt and two retries
        assert (
            len(await read_topic(bootstrap, f"{late}.quarantine"))
            + len(await read_topic(bootstrap, f"{late}.validated"))
            > 0
        )
        phases = [orjson.loads(e.value).get("phase") for e in await read_topic(bootstrap, settings.events_topic)]
        assert phases.count("binding_failed") >= 3  # the missing topic, then each failed attempt

    asyncio.run(scenario())


# --- the worker as a process ------------------------------------------------------------------------------------


def worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMS_")}
    env |= {
        "PYTHONPATH": str(ROOT), "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "STREAMS_CONTRACTS_DIR": str(settings.contracts_dir), "STREAMS_APP_ID": settings.app_id,
        "STREAMS_EVENTS_TOPIC": settings.events_topic, "STREAMS_BATCH_MAX_RECORDS": str(settings.batch_max_records),
        "STREAMS_BATCH_MAX_LATENCY_MS": str(settings.batch_max_latency_ms), "STREAMS_WEB_PORT": "0",
        "STREAMS_MAX_MESSAGE_BYTES": str(settings.max_message_bytes), "STREAMS_TOPIC_CHECK_INTERVAL_S": "1",
        "STREAMS_EXACTLY_ONCE": str(settings.exactly_once).lower(), "STREAMS_WORKER_ID": settings.worker_id or "",
    }  # fmt: skip
    return {k: v for k, v in env.items() if v}


def spawn(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.kafka.worker"], env=worker_env(settings), cwd=ROOT, stdout=out, stderr=out
        )


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
def test_sigkill_and_restart_loses_nothing(
    exactly_once: bool, feature_stream: Callable[..., Stream], tmp_path: Path
) -> None:
    stream = feature_stream(3)
    bootstrap, topic, kafka_group_id, settings = stream.bootstrap, stream.topic, stream.group, stream.settings
    msgs, invalid, undecodable = dataset(5000, seed=3)
    # a stable worker id: the restarted worker's transactional id fences the killed one's open transaction
    settings = settings.model_copy(update={"batch_max_records": 50, "exactly_once": exactly_once, "worker_id": "w1"})
    log = tmp_path / "worker.log"
    asyncio.run(produce(bootstrap, topic, msgs[: len(msgs) // 2]))
    feeder = threading.Thread(target=lambda: asyncio.run(_trickle(bootstrap, topic, msgs[len(msgs) // 2 :], 4.0)))
    feeder.start()
    proc = spawn(settings, log)
    try:
        asyncio.run(wait_committed(bootstrap, kafka_group_id, topic, at_least=len(msgs) // 5))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
        killed_at = asyncio.run(committed_total(bootstrap, kafka_group_id, topic))[0]
        proc = spawn(settings, log)
        feeder.join()
        asyncio.run(wait_committed(bootstrap, kafka_group_id, topic))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        feeder.join()
    out = asyncio.run(outputs(bootstrap, topic, committed_only=exactly_once))
    duplicates = check_routing(out, msgs, invalid=invalid, undecodable=undecodable, exact=exactly_once)
    keys = collections.Counter(r.key for records in out.values() for r in records)
    position = {r.key: (r.partition, r.offset) for r in asyncio.run(read_topic(bootstrap, topic))}
    again = sorted(position[k] for k, n in keys.items() if n > 1)
    for r in out["quarantine"] + out["dlq"]:  # error outputs name their source position in headers
        assert source_position([r]) == {position[r.key]}
    mode = "at-least-once"
    if exactly_once:  # the aborted writes of the killed worker's open transaction are there, uncommitted
        raw = asyncio.run(outputs(bootstrap, topic))
        aborted = sum(len(v) for v in raw.values()) - sum(len(v) for v in out.values())
        mode = f"exactly-once (read_committed; {aborted} aborted records skipped)"
    print(f"\nSIGKILL after {killed_at} committed offsets, {mode}: {duplicates} duplicate outputs of {len(msgs)} "
          f"inputs; re-emitted (source partition, offset): {again[:4]}{' ...' if len(again) > 4 else ''}")  # fmt: skip


async def _trickle(bootstrap: str, topic: str, msgs: list[Msg], seconds: float) -> None:
    chunks = 20
    size = -(-len(msgs) // chunks)
    for i in range(chunks):
        await produce(bootstrap, topic, msgs[i * size : (i + 1) * size])
        await asyncio.sleep(seconds / chunks)


def test_malformed_contract_is_refused_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "contracts"
    bad.mkdir()
    path = bad / "broken.odcs.yaml"
    path.write_text("apiVersion: v3.1.0\nkind: DataContract\nid: x\nschema:\n  - name: a\n   physicalName: [oops\n")
    settings = Settings(bootstrap_servers="127.0.0.1:1", contracts_dir=bad, web_port=0)
    done = subprocess.run(
        [sys.executable, "-m", "streams.kafka.worker"], env=worker_env(settings), cwd=ROOT,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"{path}:" in done.stderr and "contract refused" in done.stderr, done.stderr
    line = done.stderr.split(f"{path}:")[1].split(":")[0]
    assert line.isdigit(), done.stderr


async def window_summaries(bootstrap: str, events: str, records: int, timeout: float) -> list[dict[str, Any]]:
    """The ``window.summary`` events on ``events``, once they count ``records`` records (or after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        got = [
            orjson.loads(r.value)
            for r in await read_topic(bootstrap, events)
            if dict(r.headers).get("ce_type") == b"io.qualitystreams.window.summary.v1"
        ]
        if sum(s["records"] for s in got) >= records or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.5)


def test_faust_app_entry_point_runs_the_same_worker(feature_stream: Callable[..., Stream], tmp_path: Path) -> None:
    """``faust -A streams.kafka.app worker`` with settings from the environment routes like ``qstreams worker``."""
    stream = feature_stream(2)
    bootstrap, topic, kafka_group_id, settings = stream.bootstrap, stream.topic, stream.group, stream.settings
    msgs, invalid, undecodable = dataset(600, seed=11)
    asyncio.run(produce(bootstrap, topic, msgs))
    log = tmp_path / "faust.log"
    env = worker_env(settings) | {"FAUST_DATADIR": str(tmp_path / "faust-data"),
                                  "STREAMS_WINDOW_IDLE_CLOSE_SECONDS": "2"}  # fmt: skip
    faust = Path(sys.executable).with_name("faust")
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(faust), "-A", "streams.kafka.app", "worker", "-l", "info"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=out,
        )
    try:
        asyncio.run(wait_committed(bootstrap, kafka_group_id, topic))
        summaries = asyncio.run(window_summaries(bootstrap, settings.events_topic, len(msgs), timeout=60.0))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()[-3000:]
        # stream time runs in the faust app too: the idle stream's windows are final, one summary each
        windows = [s["window"]["start"] for s in summaries]
        assert len(windows) == len(set(windows)) and sum(s["records"] for s in summaries) == len(msgs)
    finally:
        if proc.poll() is None:
            proc.kill()
    check_routing(asyncio.run(outputs(bootstrap, topic)), msgs, invalid=invalid, undecodable=undecodable, exact=True)
