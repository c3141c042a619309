"""Governance end to end on the real broker, with nothing synthetic between the fault and the evidence.

Bad records injected into the source topic → two ``qstreams worker`` processes publish the failing window's
verdict → ``qstreams policies run`` triggers a page (delivered to a local webhook server) and a
``quarantine-stream`` exactly once → both workers route the binding's next records to quarantine → a clean window
resolves both incidents and releases the stream → ``qstreams archive`` and ``qstreams evidence`` show the trace
violation → policy → action → owner → resolution."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from tests.integration.kafka.test_policy_agent_kafka import ACTION, RESOLVED, TRIGGERED, Agent, events_of, wait_until
from tests.integration.kafka.test_worker_kafka import produce, read_topic
from tests.webhook_server import WebhookServer, webhook_server

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[3]

CONTRACT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:payments
version: 1.0.0
status: active
team:
  name: payments
  members:
    - {username: ana, role: owner}
  authoritativeDefinitions:
    - {type: runbook, url: https://wiki.example.com/payments-runbook}
support:
  - {channel: "#payments-oncall", url: https://chat.example.com/payments}
schema:
  - name: payments
    physicalName: SOURCE
    customProperties:
      - property: qstreams.window
        value: 2s
      - property: qstreams.allowedLateness
        value: 1s
      - property: qstreams.policies
        value:
          - name: amount-out-of-range
            when: {metric: rule.failure_rate, rule: "amount:maximum", above: 0.01}
            severity: critical
            action: page
            resolve: {after: 1, below: 0.005}
          - name: window-failing
            when: {metric: window.failed}
            action: quarantine-stream
            severity: error
    properties:
      - {name: id, logicalType: string, required: true}
      - name: amount
        logicalType: number
        logicalTypeOptions: {minimum: 0, maximum: 1000}
"""


def records(prefix: str, n: int, amount: float) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    return [(f"{prefix}{i}".encode(), orjson.dumps({"id": f"{prefix}{i}", "amount": amount}), []) for i in range(n)]


@pytest.fixture
def server() -> Iterator[WebhookServer]:
    with webhook_server() as s:
        yield s


@pytest.fixture
def processes() -> Iterator[Callable[[list[str], dict[str, str], Path], subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "streams.cli.main", *args], env=env, stdout=out,
                                    stderr=subprocess.STDOUT)  # fmt: skip
        procs.append(proc)
        return proc

    yield start
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def test_fault_to_evidence(
    kafka_broker: Any, kafka_topic_factory: Callable[..., str], unique_name: Callable[[str], str], tmp_path: Path,
    server: WebhookServer, processes: Callable[[list[str], dict[str, str], Path], subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    bootstrap = kafka_broker.bootstrap_servers
    source = kafka_topic_factory(partitions=2, prefix="payments")
    events, app = unique_name("events"), unique_name("app")
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    path = contracts / "payments.odcs.yaml"
    path.write_text(CONTRACT.replace("SOURCE", source))
    webhooks = [
        {"name": "team", "kind": "generic", "url": f"{server.url}/team"},
        {"name": "oncall", "kind": "pagerduty", "url": f"{server.url}/pd", "token": "rk", "actions": ["page"]},
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMS_")} | {
        "PYTHONPATH": str(ROOT), "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "STREAMS_APP_ID": app,
        "STREAMS_EVENTS_TOPIC": events, "STREAMS_CONTRACTS_DIR": str(contracts), "STREAMS_WEB_PORT": "0",
        "STREAMS_TOPIC_PARTITIONS": "2", "STREAMS_TOPIC_CHECK_INTERVAL_S": "1", "STREAMS_BATCH_MAX_LATENCY_MS": "50",
        "STREAMS_WINDOW_IDLE_CLOSE_SECONDS": "2", "STREAMS_STATE_PARTITIONS": "2",
        "STREAMS_POLICY_STATE_TOPIC": unique_name("state"), "STREAMS_POLICY_CONTROL_TOPIC": unique_name("control"),
        "STREAMS_POLICY_COMMAND_TOPIC": unique_name("commands"), "STREAMS_POLICY_WEBHOOKS": json.dumps(webhooks),
        "STREAMS_POLICY_WEBHOOK_TIMEOUT_S": "2", "STREAMS_POLICY_POLL_TIMEOUT_MS": "200",
    }  # fmt: skip
    agent_log = tmp_path / "agent.log"

    async def actions() -> list[tuple[str, str, str, str]]:
        return [(d["decision"], d["policy"], d["target"], d["status"])
                for t, d in await events_of(bootstrap, events) if t == ACTION]  # fmt: skip

    async def quarantined_by_policy() -> list[Any]:
        return [
            r for r in await read_topic(bootstrap, f"{source}.quarantine")
            if b"policy:window-failing" in dict(r.headers).get("qstreams.errors.rules", b"")
        ]  # fmt: skip

    async def scenario() -> None:
        for name in ("w1", "w2"):
            processes(["worker"], env | {"STREAMS_WORKER_ID": name}, tmp_path / f"{name}.log")
        agent = Agent(path, env, agent_log)
        agent.start()
        await produce(bootstrap, source, records("ok", 40, 10.0))
        await asyncio.sleep(3.0)  # a clean window first
        await produce(bootstrap, source, records("bad", 30, 5_000.0) + records("fine", 30, 20.0))  # the fault

        async def engaged() -> bool:
            return ("triggered", "window-failing", "urn:test:payments/payments", "engaged") in await actions()

        await wait_until(engaged, "the quarantine-stream action", agent_log, timeout=90)
        await asyncio.sleep(3.0)  # the workers follow the control topic
        await produce(bootstrap, source, records("held", 40, 30.0))  # valid, but the stream is quarantined

        async def held() -> bool:
            return len({orjson.loads(r.value)["id"] for r in await quarantined_by_policy()}) == 40

        await wait_until(held, "both workers to quarantine the stream's records", agent_log, timeout=60)

        async def released() -> bool:
            return ("resolved", "window-failing", "urn:test:payments/payments", "released") in await actions()

        await wait_until(released, "the clean window to release the stream", agent_log, timeout=90)
        await asyncio.sleep(3.0)
        await produce(bootstrap, source, records("after", 20, 40.0))

        async def forwarded() -> bool:
            got = {orjson.loads(r.value)["id"] for r in await read_topic(bootstrap, f"{source}.validated")}
            return {f"after{i}" for i in range(20)} <= got

        await wait_until(forwarded, "records to pass again", agent_log, timeout=60)
        agent.stop()

    asyncio.run(scenario())
    # each policy decided exactly once per incident; the page reached the on-call webhook, with the owner
    got = collections.Counter(
        (t.rsplit(".", 2)[-2], d["policy"]["name"])
        for t, d in asyncio.run(events_of(bootstrap, events)) if t in (TRIGGERED, RESOLVED)
    )  # fmt: skip
    assert got == {("triggered", "window-failing"): 1, ("resolved", "window-failing"): 1,
                   ("triggered", "amount-out-of-range"): 1, ("resolved", "amount-out-of-range"): 1}, got  # fmt: skip
    pd = server.bodies("/pd")
    assert [b["event_action"] for b in pd] == ["trigger", "resolve"]
    assert all(b["owner"] == "ana" and b["channel"] == "#payments-oncall" for b in server.bodies("/team"))
    # both workers held the stream: the policy's records came from both partitions, each with the policy reason
    held = asyncio.run(quarantined_by_policy())
    assert {r.partition for r in held} == {0, 1}
    assert {dict(r.headers)["qstreams.worker"] for r in held} <= {b"w1", b"w2"}
    # the audit trail: archive the topic, then the evidence bundle traces every incident
    archive, bundle = tmp_path / "archive", tmp_path / "evidence"
    run = [sys.executable, "-m", "streams.cli.main"]
    done = subprocess.run([*run, "archive", "--to", str(archive), "--idle-exit", "3"], env=env, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    evidence = ["evidence", "--contract", str(path), "--archive", str(archive), "-o", str(bundle), "--no-git-history"]
    done = subprocess.run([*run, *evidence], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    incidents = pl.read_parquet(bundle / "incidents.parquet")
    assert sorted(incidents.select("policy", "status").rows()) == [
        ("amount-out-of-range", "resolved"), ("window-failing", "resolved"),
    ]  # fmt: skip
    page = incidents.filter(pl.col("policy") == "amount-out-of-range").row(0, named=True)
    assert "amount:maximum failed" in page["violations"] and (page["action"], page["owners"]) == ("page", "ana")
    assert page["resolved_how"] == "auto" and page["actions_taken"]
    md = (bundle / "evidence.md").read_text()
    assert "## 5. Incidents" in md and "amount-out-of-range" in md and "#payments-oncall" in md
