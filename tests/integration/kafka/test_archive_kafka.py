"""`qstreams archive` on the real broker: SIGKILL mid-run, restart, replays — every event id archived exactly once."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from cloudevents.core.v1.event import CloudEvent

from streams.contracts.loader import parse_contract
from streams.events import to_kafka
from streams.governance.archive import OFFSETS_FILE, read_archive
from tests.unit.governance.scenario import scenario
from tests.unit.policies.conftest import CONTRACT

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[3]


def many_events(copies: int) -> list[CloudEvent]:
    """The scenario ``copies`` times, each copy an hour later with its own ids."""
    base = scenario(parse_contract(CONTRACT, path="payments.yaml"))
    out = []
    for k in range(copies):
        for event in base:
            attributes = dict(event.get_attributes())
            attributes["id"] = f"{k:02d}-{event.get_id()}"
            attributes["time"] = event.get_time() + dt.timedelta(hours=k)  # type: ignore[operator]
            out.append(CloudEvent(attributes, event.get_data()))
    return out


def produce(bootstrap: str, topic: str, events: list[CloudEvent], pause_s: float = 0.0) -> None:
    from kafka import KafkaProducer  # type: ignore[import-untyped,unused-ignore]

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    for i, event in enumerate(events):
        key, value, headers = to_kafka(event)
        producer.send(topic, key=key, value=value, headers=headers)
        if pause_s and i % 20 == 19:
            producer.flush()
            time.sleep(pause_s)
    producer.flush()
    producer.close()


def spawn(bootstrap: str, topic: str, to: Path, log: Path, idle_exit: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STREAMS_TOPIC_CHECK_INTERVAL_S": "1"}
    command = [sys.executable, "-m", "streams.cli.main", "archive", "--to", str(to), "--topic", topic,
               "--bootstrap-servers", bootstrap, "--batch", "20", "--idle-exit", str(idle_exit)]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=out)


def archived_offsets(to: Path) -> int:
    path = to / OFFSETS_FILE
    if not path.exists():
        return 0
    return sum(sum(parts.values()) for parts in orjson.loads(path.read_bytes())["topics"].values())


def test_sigkill_mid_archive_then_restart_archives_each_event_once(
    kafka_broker: object, kafka_topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers  # type: ignore[attr-defined]
    topic = kafka_topic_factory(3, prefix="events")
    events = many_events(8)
    replayed = events[:40]  # the same events on the topic twice (a producer retry, a republished summary)
    to, log = tmp_path / "archive", tmp_path / "archiver.log"
    produce(bootstrap, topic, events[: len(events) // 2] + replayed)
    feeder = threading.Thread(target=produce, args=(bootstrap, topic, events[len(events) // 2 :], 0.05))
    feeder.start()
    proc = spawn(bootstrap, topic, to, log, idle_exit=60)
    try:
        deadline = time.monotonic() + 60
        while archived_offsets(to) < 100 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL, log.read_text()[-3000:]
        killed_at = archived_offsets(to)
        feeder.join()
        produce(bootstrap, topic, events[100:140])  # replayed after the crash too
        proc = spawn(bootstrap, topic, to, log, idle_exit=3)
        assert proc.wait(90) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        feeder.join()
    total = len(events) + len(replayed) + 40
    assert 100 <= killed_at < total, f"the kill did not land mid-run ({killed_at} of {total} records)"
    ids = read_archive(to)["id"].to_list()
    assert len(ids) == len(set(ids)), "an event id is in the archive twice"
    assert set(ids) == {e.get_id() for e in events}
    assert archived_offsets(to) == total
    print(f"\nSIGKILL after {killed_at} of {total} records; {len(ids)} events archived once each")
