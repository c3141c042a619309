"""``qstreams performance run`` on the real broker: predictions and labels on two 2-partition topics, the joiner
SIGKILLed mid-stream and restarted; two joiner processes on two 4-partition topics, the merging one SIGKILLed
mid-stream (its pairs move to the other, then back to it restarted); exactly one ``model.performance`` event per
(window, model version), each equal to the independent computation over the whole data (duplicates, labels before
their prediction, labels past the horizon and orphans included). Topics of different partition counts: refused."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streams.events import from_kafka
from streams.events.codec import event_data
from streams.pipeline.records import Message
from tests.integration.kafka.test_worker_kafka import read_topic
from tests.unit.performance.scenario import CONTRACT, LABELS, PREDICTIONS, T0, expected, generate, iso
from tests.unit.performance.test_joiner import assert_equal

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

PERFORMANCE = "io.qualitystreams.model.performance.v1"


async def send(bootstrap: str, topics: dict[str, str], messages: list[Message]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:  # one partition at a time in order: each partition keeps the scenario's arrival order
        futures = [await producer.send(topics[m.topic], m.value, key=m.key, partition=m.partition) for m in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def sentinels(partitions: int = 2) -> list[Message]:
    """One record per partition two hours later: every watermark passes every window of the data (none idles)."""
    later = T0 + 7_200_000
    out = []
    for p in range(partitions):
        pred = {"prediction_id": f"sentinel-p{p}", "model_version": "A", "score": 0.5, "predicted_label": "legit",
                "predicted_at": iso(later)}  # fmt: skip
        label = {"prediction_id": f"sentinel-l{p}", "actual": "legit", "labelled_at": iso(later)}
        out += [Message(PREDICTIONS, p, 0, orjson.dumps(pred)), Message(LABELS, p, 0, orjson.dumps(label))]
    return out


def performance_events(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    records = asyncio.run(read_topic(bootstrap, topic, committed_only=True))
    events = [from_kafka(r.key, r.value, r.headers) for r in records]
    return [event_data(e) for e in events if e.get_type() == PERFORMANCE]


def key_of(d: dict[str, Any]) -> tuple[int, str]:
    start = datetime.fromisoformat(d["window"]["start"].replace("Z", "+00:00"))
    return round(start.timestamp() * 1000), d["model_version"]


def wait(check: Callable[[], Any], what: str, log: Path, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; joiner log:\n{log.read_text(errors='replace')[-3000:]}")


def assert_once_each_as_computed(got: list[dict[str, Any]], want: dict[Any, Any], before: int) -> None:
    """Exactly one event per (window, model version), each equal to the independent computation; ``before``
    events had been published when the joiner was killed, with windows still to publish."""
    counts = collections.Counter(key_of(d) for d in got)
    assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1]
    assert set(counts) == set(want) and 0 < before < len(want)
    for d in got:
        assert_equal(d, want[key_of(d)])


def test_joiner_killed_mid_stream_publishes_each_window_once(
    kafka_broker: Any, kafka_topic_factory: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topics = {PREDICTIONS: kafka_topic_factory(2, prefix="preds"), LABELS: kafka_topic_factory(2, prefix="labels")}
    cmd, env, events = setup(bootstrap, topics, unique_name, tmp_path)
    log = tmp_path / "joiner.log"

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)

    data = generate(seed=11, n=600, span_s=1800, noise={"A": 0.1, "B": 0.35})
    want = expected(data)
    cut = len(data.messages) * 6 // 10

    def trickle() -> None:  # the first 60% in small chunks while the joiner runs: the kill lands among polls
        for i in range(0, cut, 40):
            asyncio.run(send(bootstrap, topics, data.messages[i : min(i + 40, cut)]))
            time.sleep(0.05)

    joiner = start()
    wait(lambda: "ready" in log.read_text(), "the joiner to start", log)
    producer = threading.Thread(target=trickle)
    producer.start()
    try:
        wait(lambda: len(performance_events(bootstrap, events)) >= 3, "the first windows' events", log)
        joiner.send_signal(signal.SIGKILL)  # no clean shutdown: whatever was not committed is replayed
        joiner.wait(10)
        producer.join(60)
        before = len(performance_events(bootstrap, events))
        asyncio.run(send(bootstrap, topics, data.messages[cut:] + sentinels()))
        joiner = start()
        wait(lambda: len({key_of(d) for d in performance_events(bootstrap, events)}) >= len(want),
             "an event for every (window, model version)", log)  # fmt: skip
        time.sleep(2.0)  # room for a duplicate to show up
    finally:
        if joiner.poll() is None:
            joiner.terminate()
            joiner.wait(15)
    got = performance_events(bootstrap, events)
    assert_once_each_as_computed(got, want, before)
    accuracy = {v: sum(d["confusion"]["tp"] + d["confusion"]["tn"] for d in got if d["model_version"] == v)
                / sum(d["count"] for d in got if d["model_version"] == v) for v in ("A", "B")}  # fmt: skip
    assert accuracy["A"] > 0.85 and accuracy["B"] < 0.75
    assert "restored" in log.read_text() and log.read_text().count("ready") == 2


def setup(bootstrap: str, topics: dict[str, str], unique_name: Callable[[str], str], tmp_path: Path
          ) -> tuple[list[str], dict[str, str], str]:  # fmt: skip
    events = unique_name("events")
    text = CONTRACT.replace(f"physicalName: {PREDICTIONS}", f"physicalName: {topics[PREDICTIONS]}")
    text = text.replace(f"topic: {LABELS}", f"topic: {topics[LABELS]}")
    path = tmp_path / "fraud.odcs.yaml"
    path.write_text(text)
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "STREAMS_APP_ID": unique_name("app"), "STREAMS_EVENTS_TOPIC": events,
        "STREAMS_WINDOW_IDLE_CLOSE_SECONDS": "3600", "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
    }  # fmt: skip
    return [sys.executable, "-m", "streams.cli.main", "performance", "run", "--contract", str(path)], env, events


def test_two_joiners_on_four_pairs_one_killed_publish_each_window_once(
    kafka_broker: Any, kafka_topic_factory: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topics = {PREDICTIONS: kafka_topic_factory(4, prefix="preds"), LABELS: kafka_topic_factory(4, prefix="labels")}
    cmd, env, events = setup(bootstrap, topics, unique_name, tmp_path)
    logs = [tmp_path / "joiner-0.log", tmp_path / "joiner-1.log"]

    def start(i: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(cmd, env=env, stdout=logs[i].open("ab"), stderr=subprocess.STDOUT)

    def owned(i: int) -> list[str]:  # process i's "owns pair(s) [...] of 4" lines, oldest first
        text = logs[i].read_text(errors="replace") if logs[i].exists() else ""
        return [line.split(" owns pair(s) ")[1] for line in text.splitlines() if " owns pair(s) " in line]

    def split(since: tuple[int, int] = (0, 0)) -> bool:  # both own two pairs each (after their lines since ...)
        lines = [owned(i)[since[i] :] for i in (0, 1)]
        return all(lines) and sorted(line[-1][:6] for line in lines) == ["[0, 1]", "[2, 3]"]

    data = generate(seed=23, n=800, span_s=1800, partitions=4, noise={"A": 0.1, "B": 0.35})
    want = expected(data)
    cut = len(data.messages) * 6 // 10
    procs = [start(0), start(1)]
    both = logs[0]  # (for wait's message)
    try:
        # both members hold two pairs each (the group settled), one of them merging
        wait(split, "two members owning two pairs each", both)
        merging = next(i for i in (0, 1) if owned(i)[-1].endswith("and merges"))

        def trickle() -> None:
            for i in range(0, cut, 40):
                asyncio.run(send(bootstrap, topics, data.messages[i : min(i + 40, cut)]))
                time.sleep(0.05)

        producer = threading.Thread(target=trickle)
        producer.start()
        wait(lambda: len(performance_events(bootstrap, events)) >= 3, "the first windows' events", logs[merging])
        procs[merging].send_signal(signal.SIGKILL)  # the merger and the owner of pairs 0-1, mid-stream
        procs[merging].wait(10)
        producer.join(60)
        before = len(performance_events(bootstrap, events))
        other = 1 - merging
        wait(lambda: owned(other)[-1] == "[0, 1, 2, 3] of 4 and merges", "the survivor to take every pair",
             logs[other])  # fmt: skip
        seen = (len(owned(0)), len(owned(1)))
        procs[merging] = start(merging)  # back: the pairs are split again, mid-stream
        wait(lambda: split(seen), "the restarted member to take two pairs back", logs[merging])
        asyncio.run(send(bootstrap, topics, data.messages[cut:] + sentinels(4)))
        wait(lambda: len({key_of(d) for d in performance_events(bootstrap, events)}) >= len(want),
             "an event for every (window, model version)", logs[other])  # fmt: skip
        time.sleep(2.0)  # room for a duplicate to show up
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(15)
    got = performance_events(bootstrap, events)
    assert_once_each_as_computed(got, want, before)
    texts = [log.read_text(errors="replace") for log in logs]
    assert "restored pair(s) [0, 1]" in texts[1 - merging]  # the survivor took the killed member's pairs over
    assert texts[merging].count(" ready") == 2 and "performance merger" in texts[merging]


def test_topics_not_co_partitioned_are_refused(
    kafka_broker: Any, kafka_topic_factory: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topics = {PREDICTIONS: kafka_topic_factory(3, prefix="preds"), LABELS: kafka_topic_factory(2, prefix="labels")}
    cmd, env, _ = setup(kafka_broker.bootstrap_servers, topics, unique_name, tmp_path)
    done = subprocess.run(cmd, check=False, env=env, capture_output=True, timeout=60)
    err = done.stderr.decode()
    assert done.returncode == 2, err[-2000:]
    assert "has 3 partition(s)" in err and "has 2:" in err and "co-partitioned" in err
