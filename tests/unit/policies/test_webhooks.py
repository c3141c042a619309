"""Webhook payloads (generic, Slack, PagerDuty Events v2, Alertmanager) delivered to a real local HTTP server."""

from __future__ import annotations

import asyncio
import socket

from streams.contracts.model import Contract
from streams.policies.actions import Alert, deliver, payload
from streams.policies.agent import PolicyAgent
from streams.policies.config import PolicySettings, Webhook, load_policy_settings
from tests.webhook_server import webhook_server

from .summaries import message, summary


def agent_with(contract: Contract, hooks: tuple[Webhook, ...]) -> PolicyAgent:
    agent = PolicyAgent([contract], PolicySettings(webhooks=hooks), "ev")
    for i, rate in enumerate([0.0, 0.02, 0.03, 0.0, 0.0]):
        agent.handle(message(summary(contract, i, rate), "ev", i))
    return agent


def alerts(contract: Contract, hooks: tuple[Webhook, ...]) -> list[tuple[str, Webhook, Alert]]:
    return agent_with(contract, hooks).due()


def deliver_all(agent: PolicyAgent) -> list[bool]:
    """Deliver the outbox as the runner does: round after round (a resolution waits for its trigger)."""

    async def rounds() -> list[bool]:
        sent = []
        while due := agent.due():
            for did, hook, alert in due:
                result = await deliver(hook, payload(alert, hook), timeout_s=2, retries=0, backoff_s=0.01)
                agent.delivered(did, alert, result)
                sent.append(result.ok)
        return sent

    return asyncio.run(rounds())


def test_every_kind_reaches_the_server_with_owner_channel_and_runbook(contract: Contract) -> None:
    with webhook_server() as server:
        hooks = tuple(
            Webhook(name=k, kind=k, url=f"{server.url}/{k}", token="s3cret", actions=("page",))  # type: ignore[arg-type]
            for k in ("generic", "slack", "pagerduty", "alertmanager")
        )
        agent = agent_with(contract, hooks)
        assert len(agent.due()) == 4  # one per webhook: the trigger of amount-out-of-range (page) first
        assert deliver_all(agent) == [True] * 8  # then its resolution
        generic = server.bodies("/generic")
        assert [b["decision"] for b in generic] == ["triggered", "resolved"]
        assert generic[0]["owner"] == "ana" and generic[0]["channel"] == "#payments-oncall"
        assert generic[0]["runbook_url"] == "https://wiki.example.com/payments-runbook"
        slack = server.bodies("/slack")[0]
        assert "ana" in slack["text"] and "#payments-oncall" in slack["text"] and "payments-runbook" in slack["text"]
        assert slack["blocks"][0]["type"] == "section"
        pd = server.bodies("/pagerduty")
        assert [b["event_action"] for b in pd] == ["trigger", "resolve"] and pd[0]["routing_key"] == "s3cret"
        assert pd[0]["dedup_key"] == pd[1]["dedup_key"] == generic[0]["incident_id"]
        assert pd[0]["payload"]["severity"] == "critical" and pd[0]["payload"]["custom_details"]["owner"] == "ana"
        assert pd[0]["links"] == [{"href": "https://wiki.example.com/payments-runbook", "text": "Runbook"}]
        am = server.bodies("/alertmanager")
        assert am[0][0]["labels"]["alertname"] == "amount-out-of-range" and "endsAt" not in am[0][0]
        assert am[1][0]["endsAt"] and am[0][0]["annotations"]["runbook_url"].endswith("payments-runbook")
        bearer = [r.headers.get("Authorization") for r in server.requests if r.path in ("/generic", "/alertmanager")]
        assert bearer == ["Bearer s3cret"] * 4
        assert not any("Authorization" in r.headers for r in server.requests if r.path == "/pagerduty")


def test_retries_with_backoff_then_delivers(contract: Contract) -> None:
    with webhook_server() as server:
        hook = Webhook(name="g", url=f"{server.url}/g")
        [(_, _, alert), *_] = alerts(contract, (hook,))
        server.fail_next = 2
        result = asyncio.run(deliver(hook, payload(alert, hook), timeout_s=2, retries=3, backoff_s=0.01))
        assert (result.ok, result.attempts, result.status) == (True, 3, 202)
        assert len(server.bodies("/g")) == 1


def test_an_unreachable_webhook_fails_after_its_retries(contract: Contract) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hook = Webhook(name="down", url=f"http://127.0.0.1:{port}/x")
    [(_, _, alert), *_] = alerts(contract, (hook,))
    result = asyncio.run(deliver(hook, payload(alert, hook), timeout_s=1, retries=2, backoff_s=0.01))
    assert (result.ok, result.attempts) == (False, 3) and "Connection" in (result.error or "")


def test_webhooks_from_the_environment_keep_tokens_secret(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(
        "STREAMS_POLICY_WEBHOOKS", '[{"name": "pd", "kind": "pagerduty", "url": "https://e.example/v2", "token": "rk"}]'
    )
    s = load_policy_settings()
    assert s.webhooks[0].token is not None and s.webhooks[0].token.get_secret_value() == "rk"
    assert "rk" not in repr(s)
