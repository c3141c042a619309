"""Red team 10: ``qstreams performance run`` on the real broker with records later than their windows: once every
window of the data was published, labels for its predictions (another value than the first label, or a first
label), labels of unknown ids and new predictions, all of those published windows, arrive. They are ``late``
(counted on ``/metrics``), and no window is published again or changed: the events stay exactly the independent
computation over the on-time records (duplicates, labels before their predictions, past the horizon, orphans)."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import time
import urllib.request
import zlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.pipeline.records import Message
from tests.integration.kafka.test_performance_kafka import (
    key_of,
    performance_events,
    send,
    sentinels,
    setup,
    wait,
)
from tests.unit.performance.scenario import (
    LABELS,
    PREDICTIONS,
    T0,
    Data,
    expected,
    generate,
    iso,
    label_record,
    prediction_record,
)
from tests.unit.performance.test_joiner import assert_equal

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _late(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    m = re.search(r'qstreams_performance_records_total\{kind="late"\} ([0-9.e+]+)', text)
    return float(m.group(1)) if m else 0.0


def _msg(topic: str, pid: str, record: dict[str, Any], partitions: int = 2) -> Message:
    return Message(topic, zlib.crc32(pid.encode()) % partitions, 0, orjson.dumps(record), pid.encode())


def test_records_later_than_their_published_windows_change_nothing(
    kafka_broker: Any, kafka_topic_factory: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topics = {PREDICTIONS: kafka_topic_factory(2, prefix="preds"), LABELS: kafka_topic_factory(2, prefix="labels")}
    cmd, env, events = setup(bootstrap, topics, unique_name, tmp_path)
    port = _port()
    cmd += ["--metrics-port", str(port)]
    log = tmp_path / "joiner.log"
    data = generate(seed=21, n=300, span_s=600)
    want = expected(data)
    late: list[Message] = []
    for pid, t, _, _, _ in data.predictions[:20]:  # a label (another value than a first one, or a first one)
        late.append(_msg(LABELS, pid, label_record(pid, t + 1_000, True)))
    for j in range(10):  # labels of unknown ids, and new predictions, in the published windows
        t = T0 + 30_000 * j
        late.append(_msg(LABELS, f"late-orphan-{j}", label_record(f"late-orphan-{j}", t, False)))
        late.append(_msg(PREDICTIONS, f"late-pred-{j}", prediction_record(f"late-pred-{j}", t, "A", 0.9, True)))
    later = [Message(m.topic, m.partition, 0, m.value.replace(iso(T0 + 7_200_000).encode(), iso(T0 + 14_400_000)
                     .encode()).replace(b"sentinel-", b"sentinel2-"), m.key) for m in sentinels()]  # fmt: skip
    joiner = subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    try:
        wait(lambda: "ready" in log.read_text(), "the joiner to start", log)
        asyncio.run(send(bootstrap, topics, data.messages + sentinels()))
        wait(lambda: {key_of(d) for d in performance_events(bootstrap, events)} >= set(want),
             "an event for every (window, model version) of the data", log)  # fmt: skip
        before = _late(port)
        asyncio.run(send(bootstrap, topics, late + later))
        wait(lambda: _late(port) >= before + len(late), f"{len(late)} more late records", log)
        time.sleep(2.0)  # room for a duplicate or a changed event to show up
        assert _late(port) == before + len(late)
    finally:
        joiner.terminate()
        joiner.wait(15)
    got = [d for d in performance_events(bootstrap, events) if key_of(d) in want]
    assert sorted(key_of(d) for d in got) == sorted(want)  # each (window, version) once, none missing
    for d in got:
        assert_equal(d, want[key_of(d)])


DAY_MS = 86_400_000


def _shifted(data: Data, ms: int) -> Data:
    """The same scenario ``ms`` later (ids renamed): its records, and what they must give."""
    out = Data(
        [(f"n{pid}", t + ms, v, s, pos) for pid, t, v, s, pos in data.predictions],
        [(f"n{pid}", t + ms, a) for pid, t, a in data.labels],
    )
    for m in data.messages:
        record = orjson.loads(m.value)
        for k in ("predicted_at", "labelled_at"):
            if k in record:
                record[k] = iso(parse_iso_ms(record[k]) + ms)
        record["prediction_id"] = f"n{record['prediction_id']}"
        pid = record["prediction_id"]
        out.messages.append(_msg(m.topic, pid, record))
    return out


def parse_iso_ms(text: str) -> int:
    return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def test_topics_recreated_while_the_joiner_was_down_are_read_from_their_start(
    kafka_broker: Any, kafka_topic_factory: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    """The pairs' stored offsets are those of the old topics: seeking beyond the new topics' ends, the consumer read
    them from the beginning, and the joiner took every record below the stored offsets for one consumed before the
    restart, silently: the new records, up to that many, were never joined."""
    from kafka.admin import KafkaAdminClient, NewTopic  # type: ignore[import-untyped,unused-ignore]

    bootstrap = kafka_broker.bootstrap_servers
    topics = {PREDICTIONS: kafka_topic_factory(2, prefix="preds"), LABELS: kafka_topic_factory(2, prefix="labels")}
    cmd, env, events = setup(bootstrap, topics, unique_name, tmp_path)
    log = tmp_path / "joiner.log"
    old = generate(seed=23, n=200, span_s=300)
    new = _shifted(generate(seed=24, n=60, span_s=120), DAY_MS)
    want = expected(new)
    later = [Message(m.topic, m.partition, 0, m.value.replace(iso(T0 + 7_200_000).encode(), iso(T0 + DAY_MS + 7_200_000)
                     .encode()).replace(b"sentinel-", b"sentinel2-"), m.key) for m in sentinels()]  # fmt: skip

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)

    joiner = start()
    try:
        wait(lambda: "ready" in log.read_text(), "the joiner to start", log)
        asyncio.run(send(bootstrap, topics, old.messages + sentinels()))
        wait(lambda: {key_of(d) for d in performance_events(bootstrap, events)} >= set(expected(old)),
             "the old topics' windows", log)  # fmt: skip
    finally:
        joiner.terminate()
        joiner.wait(15)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="rt10")
    try:
        admin.delete_topics(list(topics.values()))
        deadline = time.monotonic() + 30
        while set(topics.values()) & set(admin.list_topics()) and time.monotonic() < deadline:
            time.sleep(0.3)
        for _ in range(60):  # the broker may still be deleting them
            try:
                admin.create_topics([NewTopic(t, num_partitions=2, replication_factor=1) for t in topics.values()])
                break
            except Exception:
                time.sleep(0.5)
    finally:
        admin.close()
    asyncio.run(send(bootstrap, topics, new.messages + later))
    joiner = start()
    try:
        wait(lambda: {key_of(d) for d in performance_events(bootstrap, events)} >= set(want),
             "an event for every (window, model version) of the recreated topics", log, timeout=40)  # fmt: skip
        time.sleep(1.0)
    finally:
        joiner.terminate()
        joiner.wait(15)
    got = [d for d in performance_events(bootstrap, events) if key_of(d) in want]
    assert sorted(key_of(d) for d in got) == sorted(want)
    for d in got:
        assert_equal(d, want[key_of(d)])
    assert "was recreated or truncated" in log.read_text()
