"""Red team 10: the policy agent (``qstreams policies run``) over a real broker, as users run it.

* SIGKILL while a webhook POST is in flight (after the decision's transaction, before the delivery's record): the
  restarted agent delivers it again (at least once) with the same decision event id, and decides nothing twice;
* two agents started with one ``agent_id``: every incident is still triggered and resolved exactly once, and the
  older one, fenced, stops with an error naming the cause (before, each restarted and fenced the other back: the two
  took turns for good).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from streams.contracts.loader import parse_contract
from streams.events.codec import to_kafka
from tests.integration.kafka.test_policy_agent_kafka import RESOLVED, TRIGGERED, Agent, events_of, wait_until
from tests.integration.kafka.test_worker_kafka import produce
from tests.unit.policies.conftest import CONTRACT
from tests.unit.policies.summaries import summary

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]


@dataclass
class SlowHooks:
    url: str
    delay_s: float
    arrived: list[dict[str, Any]] = field(default_factory=list)  # recorded on arrival, before the answer
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def slow_hooks() -> Iterator[SlowHooks]:
    state: list[SlowHooks] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            with state[0].lock:
                state[0].arrived.append(body)
            time.sleep(state[0].delay_s)
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.append(SlowHooks(f"http://127.0.0.1:{httpd.server_address[1]}", 3.0))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield state[0]
    finally:
        httpd.shutdown()
        httpd.server_close()


def _setup(
    kafka_broker: Any, unique_name: Any, tmp_path: Path, hooks_url: str
) -> tuple[str, str, Any, dict[str, str], Path]:
    bootstrap = kafka_broker.bootstrap_servers
    source, events, app = unique_name("payments"), unique_name("events"), unique_name("app")
    text = CONTRACT.replace("physicalName: shop.payments.v1", f"physicalName: {source}")
    path = tmp_path / "payments.odcs.yaml"
    path.write_text(text)
    contract = parse_contract(text, path=str(path))
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "STREAMS_APP_ID": app, "STREAMS_EVENTS_TOPIC": events,
        "STREAMS_TOPIC_PARTITIONS": "2", "STREAMS_POLICY_STATE_TOPIC": unique_name("state"),
        "STREAMS_POLICY_CONTROL_TOPIC": unique_name("control"), "STREAMS_POLICY_COMMAND_TOPIC": unique_name("cmd"),
        "STREAMS_POLICY_WEBHOOKS": json.dumps([{"name": "team", "kind": "generic", "url": f"{hooks_url}/team"}]),
        "STREAMS_POLICY_WEBHOOK_RETRIES": "0", "STREAMS_POLICY_WEBHOOK_TIMEOUT_S": "10",
        "STREAMS_POLICY_POLL_TIMEOUT_MS": "200", "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
    }  # fmt: skip
    return bootstrap, events, contract, env, path


def _decisions(got: list[tuple[str, dict[str, Any]]]) -> collections.Counter[tuple[str, str]]:
    kinds = {TRIGGERED: "triggered", RESOLVED: "resolved"}
    return collections.Counter((kinds[t], d["policy"]["name"]) for t, d in got if t in kinds)


def test_sigkill_during_webhook_delivery_redelivers_once_decided(
    kafka_broker: Any, unique_name: Any, tmp_path: Path, slow_hooks: SlowHooks
) -> None:
    bootstrap, events, contract, env, path = _setup(kafka_broker, unique_name, tmp_path, slow_hooks.url)
    log = tmp_path / "agent.log"
    agent = Agent(path, env, log)

    async def scenario() -> None:
        await produce(bootstrap, events, [to_kafka(summary(contract, i, r)) for i, r in {0: 0.0, 1: 0.02}.items()])
        agent.start()

        async def arrived() -> bool:
            return bool(slow_hooks.arrived)

        await wait_until(arrived, "the trigger's webhook POST to arrive", log)
        agent.kill()  # the POST is in flight: its outcome is never recorded
        slow_hooks.delay_s = 0.0
        agent.start()

        async def again() -> bool:
            return len(slow_hooks.arrived) >= 2

        await wait_until(again, "the webhook to be delivered again after the restart", log)
        await asyncio.sleep(2.0)

    try:
        asyncio.run(scenario())
    finally:
        agent.stop()
    got = asyncio.run(events_of(bootstrap, events))
    assert _decisions(got) == {("triggered", "window-failing"): 1}, got
    ids = [(b["decision"], b["event_id"], b["incident_id"]) for b in slow_hooks.arrived]
    assert len(ids) == 2 and len(set(ids)) == 1, ids  # at least once, the same idempotency key
    sent = [d for t, d in got if t.endswith("policy.action.v1") and d["channel"] == "webhook"]
    assert [d["status"] for d in sent] == ["sent"], sent


def test_two_agents_with_one_id_decide_once(
    kafka_broker: Any, unique_name: Any, tmp_path: Path, slow_hooks: SlowHooks
) -> None:
    slow_hooks.delay_s = 0.0
    bootstrap, events, contract, env, path = _setup(kafka_broker, unique_name, tmp_path, slow_hooks.url)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    agents = [Agent(path, env, logs[0]), Agent(path, env, logs[1])]

    def windows(rates: dict[int, float]) -> list[Any]:
        return [to_kafka(summary(contract, i, r)) for i, r in rates.items()]

    async def scenario() -> None:
        await produce(bootstrap, events, windows({0: 0.0, 1: 0.02}))
        agents[0].start()

        async def opened() -> bool:
            return _decisions(await events_of(bootstrap, events))[("triggered", "window-failing")] == 1

        await wait_until(opened, "window-failing to trigger", logs[0])
        agents[1].start()  # the same agent id: fences the first
        for i, rate in ((2, 0.03), (3, 0.0), (4, 0.0), (5, 0.0)):
            await produce(bootstrap, events, windows({i: rate}))
            await asyncio.sleep(2.0)

        async def resolved() -> bool:
            d = _decisions(await events_of(bootstrap, events))
            return d[("resolved", "amount-out-of-range")] >= 1 and d[("resolved", "window-failing")] >= 1

        await wait_until(resolved, "both incidents to resolve", logs[1])
        await asyncio.sleep(3.0)

    try:
        asyncio.run(scenario())
    finally:
        for a in agents:
            a.stop()
    got = asyncio.run(events_of(bootstrap, events))
    assert _decisions(got) == {
        ("triggered", "window-failing"): 1, ("resolved", "window-failing"): 1,
        ("triggered", "amount-out-of-range"): 1, ("resolved", "amount-out-of-range"): 1,
    }, got  # fmt: skip
    # the fenced (older) agent stopped with the cause named; it did not fence the newer one back
    first, second = (lg.read_text(errors="replace") for lg in logs)
    assert agents[0].proc is not None and agents[0].proc.returncode == 2, first[-2000:]  # type: ignore[attr-defined]
    assert "was fenced: another agent with" in first and "ProducerFenced" not in second, (first[-2000:], second)


def test_an_events_topic_recreated_while_the_agent_was_down_is_read_from_its_start(
    kafka_broker: Any, unique_name: Any, tmp_path: Path, slow_hooks: SlowHooks
) -> None:
    """The agent's stored offsets are those of the old topic: seeking beyond the new topic's end, the consumer read
    it from the beginning, and the agent took every record below the stored offset for one consumed before the
    restart, silently: the new workers' windows, up to that many records, were never judged."""
    from kafka.admin import KafkaAdminClient, NewTopic  # type: ignore[import-untyped,unused-ignore]

    slow_hooks.delay_s = 0.0
    bootstrap, events, contract, env, path = _setup(kafka_broker, unique_name, tmp_path, slow_hooks.url)
    log = tmp_path / "agent.log"
    agent = Agent(path, env, log)

    def windows(rates: dict[int, float]) -> list[Any]:
        return [to_kafka(summary(contract, i, r)) for i, r in rates.items()]

    def create() -> None:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="rt10")
        try:
            for _ in range(60):  # the broker may still be deleting it
                try:
                    admin.create_topics([NewTopic(events, num_partitions=2, replication_factor=1)])
                    return
                except Exception:
                    time.sleep(0.5)
        finally:
            admin.close()

    create()  # two partitions both times: the summaries' key is in the same partition of both topics

    async def first() -> None:
        await produce(bootstrap, events, windows(dict.fromkeys(range(12), 0.0)))
        agent.start()

        async def consumed() -> bool:
            return "offsets" in log.read_text() and bool(await events_of(bootstrap, events))

        await wait_until(consumed, "the agent to start", log)
        await asyncio.sleep(3.0)

    try:
        asyncio.run(first())
    finally:
        agent.stop()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="rt10")
    try:
        admin.delete_topics([events])
        deadline = time.monotonic() + 30
        while events in admin.list_topics() and time.monotonic() < deadline:
            time.sleep(0.3)
    finally:
        admin.close()
    create()
    assert asyncio.run(events_of(bootstrap, events)) == []  # recreated: empty

    async def second() -> None:
        await produce(bootstrap, events, windows({12: 0.0, 13: 0.02}))  # window 13 fails: window-failing
        agent.start()

        async def opened() -> bool:
            return _decisions(await events_of(bootstrap, events))[("triggered", "window-failing")] == 1

        await wait_until(opened, "window-failing to trigger on the recreated topic", log, timeout=25.0)

    try:
        asyncio.run(second())
    finally:
        agent.stop()
    assert "was recreated or truncated" in log.read_text()
