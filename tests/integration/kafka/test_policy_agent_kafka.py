"""The policy agent on the real broker, end to end: window violations on the quality-event topic → each policy
triggers exactly once despite replayed events and a SIGKILL of the agent → webhooks received by a local HTTP
server (and an unreachable one reported as a failed action) → a worker routes the quarantined binding to
quarantine → resolution after recovery releases it. The agent runs as ``qstreams policies run`` in a subprocess."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.contracts.loader import parse_contract
from streams.events import from_kafka
from streams.events.codec import event_data, to_kafka
from tests.integration.kafka.test_worker_kafka import produce, read_topic
from tests.unit.policies.conftest import CONTRACT
from tests.unit.policies.summaries import summary
from tests.webhook_server import WebhookServer, webhook_server

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

TRIGGERED, RESOLVED = "io.qualitystreams.policy.triggered.v1", "io.qualitystreams.policy.resolved.v1"
ACTION = "io.qualitystreams.policy.action.v1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Agent:
    """``qstreams policies run`` as a subprocess (SIGKILL-able)."""

    def __init__(self, contract: Path, env: dict[str, str], log: Path) -> None:
        self.contract, self.env, self.log, self.proc = contract, env, log, None

    def start(self) -> None:
        cmd = [sys.executable, "-m", "streams.cli.main", "policies", "run", "--contract", str(self.contract)]
        out = self.log.open("ab")
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT)  # type: ignore[assignment]

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
        self.proc.wait(10)  # type: ignore[attr-defined]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:  # type: ignore[attr-defined]
            self.proc.terminate()  # type: ignore[attr-defined]
            try:
                self.proc.wait(15)  # type: ignore[attr-defined]
            except subprocess.TimeoutExpired:
                self.kill()


async def events_of(bootstrap: str, topic: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for r in await read_topic(bootstrap, topic, committed_only=True):
        if dict(r.headers).get("ce_type") == b"x":
            continue  # the malformed record the test wrote
        e = from_kafka(r.key, r.value, r.headers)
        out.append((e.get_type(), event_data(e)))
    return out


async def wait_until(check: Callable[[], Awaitable[Any]], what: str, log: Path, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await check()
        if got:
            return got
        await asyncio.sleep(0.3)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}; agent log:\n{tail}")


@pytest.fixture
def server() -> Iterator[WebhookServer]:
    with webhook_server() as s:
        yield s


def test_policy_agent_end_to_end(kafka_broker: Any, unique_name: Any, tmp_path: Path, server: WebhookServer) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    source, events, app = unique_name("payments"), unique_name("events"), unique_name("app")
    topics = {k: unique_name(k) for k in ("state", "control", "commands")}
    text = CONTRACT.replace("physicalName: shop.payments.v1", f"physicalName: {source}")
    path = tmp_path / "payments.odcs.yaml"
    path.write_text(text)
    contract = parse_contract(text, path=str(path))
    webhooks = [
        {"name": "team", "kind": "generic", "url": f"{server.url}/team"},
        {"name": "oncall", "kind": "pagerduty", "url": f"{server.url}/pd", "token": "rk", "actions": ["page"]},
        {"name": "down", "kind": "slack", "url": f"http://127.0.0.1:{free_port()}/x", "actions": ["page"]},
    ]
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "STREAMS_APP_ID": app, "STREAMS_EVENTS_TOPIC": events,
        "STREAMS_TOPIC_PARTITIONS": "2", "STREAMS_POLICY_STATE_TOPIC": topics["state"],
        "STREAMS_POLICY_CONTROL_TOPIC": topics["control"], "STREAMS_POLICY_COMMAND_TOPIC": topics["commands"],
        "STREAMS_POLICY_WEBHOOKS": json.dumps(webhooks), "STREAMS_POLICY_WEBHOOK_RETRIES": "2",
        "STREAMS_POLICY_WEBHOOK_BACKOFF_S": "0.05", "STREAMS_POLICY_WEBHOOK_TIMEOUT_S": "2",
        "STREAMS_POLICY_REDELIVER_AFTER_S": "600", "STREAMS_POLICY_POLL_TIMEOUT_MS": "200",
        "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
    }  # fmt: skip
    metrics_port = free_port()
    env["STREAMS_POLICY_METRICS_PORT"] = str(metrics_port)
    log = tmp_path / "agent.log"
    agent = Agent(path, env, log)
    scraped: dict[str, bytes] = {}

    def windows(rates: dict[int, float]) -> list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]:
        return [to_kafka(summary(contract, i, r)) for i, r in rates.items()]

    async def decisions() -> collections.Counter[tuple[str, str]]:
        kinds = {TRIGGERED: "triggered", RESOLVED: "resolved"}
        got = await events_of(bootstrap, events)
        return collections.Counter((kinds[t], d["policy"]["name"]) for t, d in got if t in kinds)

    async def actions() -> list[tuple[str, str, str, str]]:
        got = await events_of(bootstrap, events)
        return [(d["decision"], d["policy"], d["target"], d["status"]) for t, d in got if t == ACTION]

    async def scenario() -> None:
        garbage = [(b"k", b"{not a quality event", [("ce_type", b"x")])]
        await produce(bootstrap, events, garbage + windows({0: 0.0, 1: 0.02}))  # window 1 fails: window-failing
        agent.start()

        async def opened() -> bool:
            return (await decisions())[("triggered", "window-failing")] == 1

        await wait_until(opened, "window-failing to trigger", log)
        await produce(bootstrap, events, windows({2: 0.03}))  # 2 windows above 1%: amount-out-of-range (page)

        async def paged() -> bool:
            done = {(a[2], a[3]) for a in await actions() if a[:2] == ("triggered", "amount-out-of-range")}
            return {("team", "sent"), ("oncall", "sent"), ("down", "failed")} <= done

        await wait_until(paged, "the page to be delivered (and the unreachable webhook to fail)", log)
        agent.kill()  # SIGKILL: no clean shutdown
        await produce(bootstrap, events, windows({0: 0.0, 1: 0.02, 2: 0.03}))  # the same windows, replayed
        agent.start()
        await produce(bootstrap, events, windows({3: 0.0, 4: 0.0, 1: 0.02}))  # recovery (and a late replay)

        async def recovered() -> bool:
            d = await decisions()
            return d[("resolved", "window-failing")] >= 1 and d[("resolved", "amount-out-of-range")] >= 1

        await wait_until(recovered, "both incidents to resolve", log)
        # a second incident of window-failing, resolved by hand with `qstreams incidents resolve ID`
        await produce(bootstrap, events, windows({5: 0.02}))

        async def reopened() -> list[str]:
            got = await events_of(bootstrap, events)
            return [d["incident"]["id"] for t, d in got if t == TRIGGERED and d["policy"]["name"] == "window-failing"][
                1:
            ]

        [second] = await wait_until(reopened, "window-failing to open a second incident", log)
        cli = [sys.executable, "-m", "streams.cli.main", "incidents", "resolve", second, "--by", "ana"]
        done = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0 and second in done.stdout, done.stderr

        async def by_hand() -> bool:
            got = await events_of(bootstrap, events)
            return any(t == RESOLVED and d["incident"]["id"] == second and d["resolution"]["how"] == "manual"
                       and d["resolution"]["by"] == "ana" for t, d in got)  # fmt: skip

        await wait_until(by_hand, "the manual resolution", log)
        await asyncio.sleep(1.5)  # room for any duplicate to show up
        scraped["metrics"] = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read()

    try:
        asyncio.run(scenario())
    finally:
        agent.stop()

    got = asyncio.run(decisions())
    assert got == {
        ("triggered", "window-failing"): 2, ("triggered", "amount-out-of-range"): 1,
        ("resolved", "window-failing"): 2, ("resolved", "amount-out-of-range"): 1,
    }, got  # fmt: skip
    # the webhooks: once per decision (the page and its resolution), the owner and runbook in every alert
    team = server.bodies("/team")
    assert sorted((b["decision"], b["policy"]) for b in team) == [
        ("resolved", "amount-out-of-range"), ("resolved", "window-failing"), ("resolved", "window-failing"),
        ("triggered", "amount-out-of-range"), ("triggered", "window-failing"), ("triggered", "window-failing"),
    ]  # fmt: skip
    assert all(b["owner"] == "ana" and b["channel"] == "#payments-oncall" and b["runbook_url"] for b in team)
    pd = server.bodies("/pd")
    assert [b["event_action"] for b in pd] == ["trigger", "resolve"] and pd[0]["dedup_key"] == pd[1]["dedup_key"]
    acts = asyncio.run(actions())
    assert acts.count(("triggered", "amount-out-of-range", "down", "failed")) == 1  # reported once, incident open
    assert ("triggered", "window-failing", f"{contract.id}/payments", "engaged") in acts
    assert ("resolved", "window-failing", f"{contract.id}/payments", "released") in acts
    # the control topic: engaged, then released (a tombstone)
    control = asyncio.run(read_topic(bootstrap, topics["control"], committed_only=True))
    assert [orjson.loads(r.value)["policy"] if r.value else None for r in control] == ["window-failing", None] * 2
    # the agent's metrics, and the live view's JSON lines
    metrics = scraped["metrics"].decode()
    assert f'qstreams_policy_open_incidents{{contract="{contract.id}"}} 0.0' in metrics
    assert 'qstreams_policy_actions_total{channel="webhook",outcome="sent",target="team"}' in metrics
    tail = [sys.executable, "-m", "streams.cli.main", "events", "tail", "--json", "--from-beginning",
            "--type", "policy.triggered", "--max-events", "3", "--duration", "30"]  # fmt: skip
    lines = subprocess.run(tail, env=env, capture_output=True, text=True, timeout=60, check=True).stdout.splitlines()
    shown = [json.loads(line) for line in lines]
    assert [e["data"]["policy"]["name"] for e in shown] == ["window-failing", "amount-out-of-range", "window-failing"]
    assert {e["data"]["owner"]["owners"][0] for e in shown} == {"ana"}
    # the malformed record was skipped with a log line; the restart restored the state
    text = log.read_text()
    assert text.count("skipping record") == 1 and "2 open incident(s), 1 delivery(ies) pending" in text
