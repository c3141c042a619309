"""The policy agent without Kafka: decisions exactly once across replays and restarts, actions, outbox."""

from __future__ import annotations

import logging

import orjson
import pytest

from streams.contracts.model import Contract
from streams.events import EventType, event_data, from_kafka, validate_event
from streams.events.actions import policy_command
from streams.pipeline.records import Message, OutRecord
from streams.policies.actions import Delivery
from streams.policies.agent import PolicyAgent
from streams.policies.config import PolicySettings, Webhook
from streams.policies.control import Engaged

from .summaries import T0, message, summary

EVENTS = "dq.events"
STATE = "dq.state"
RATES = [0.0, 0.02, 0.03, 0.0, 0.0]  # window-failing opens at 1, amount-out-of-range at 2; both resolve by 4


def settings(**more: object) -> PolicySettings:
    return PolicySettings(control_topic="dq.control", command_topic="dq.commands", **more)  # type: ignore[arg-type]


def feed(agent: PolicyAgent, contract: Contract, rates: list[float], start: int = 0) -> list[OutRecord]:
    out: list[OutRecord] = []
    for i, rate in enumerate(rates[start:], start):
        out += agent.handle(message(summary(contract, i, rate), EVENTS, offset=i))
    return out


def events(records: list[OutRecord], topic: str = EVENTS) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    out = []
    for r in records:
        if r.topic == topic:
            e = from_kafka(r.key, r.value, r.headers)
            validate_event(e)
            out.append((e.get_type(), event_data(e)))
    return out


def decisions(records: list[OutRecord]) -> list[tuple[str, str]]:
    kinds = {str(EventType.POLICY_TRIGGERED): "triggered", str(EventType.POLICY_RESOLVED): "resolved"}
    return [(kinds[t], d["policy"]["name"]) for t, d in events(records) if t in kinds]


def test_each_incident_triggers_and_resolves_once_with_owner_and_quarantine(contract: Contract) -> None:
    agent = PolicyAgent([contract], settings(), EVENTS)
    out = feed(agent, contract, RATES)
    assert decisions(out) == [
        ("triggered", "window-failing"), ("triggered", "amount-out-of-range"),
        ("resolved", "window-failing"), ("resolved", "amount-out-of-range"),
    ]  # fmt: skip
    triggered = next(d for t, d in events(out) if t == str(EventType.POLICY_TRIGGERED))
    assert triggered["owner"]["owners"] == ["ana"] and triggered["owner"]["support_channel"] == "#payments-oncall"
    assert triggered["owner"]["runbook_url"] == "https://wiki.example.com/payments-runbook"
    control = [r for r in out if r.topic == "dq.control"]
    engaged = Engaged()
    engaged.apply(control[0].key, control[0].value)
    assert engaged.policies(contract.id, "payments") == ["window-failing"]
    engaged.apply(control[1].key, control[1].value)
    assert len(control) == 2 and control[1].value is None and engaged.policies(contract.id, "payments") == []
    actions = [(d["channel"], d["status"]) for t, d in events(out) if t == str(EventType.POLICY_ACTION)]
    assert actions == [("quarantine", "engaged"), ("quarantine", "released")]
    text = agent.metrics.render().decode()
    assert (
        f'qstreams_policy_actions_total{{channel="quarantine",outcome="sent",target="{contract.id}/payments"}} 2.0'
        in text
    )


def test_replayed_events_and_a_restart_decide_nothing_twice(contract: Contract) -> None:
    whole = decisions(feed(PolicyAgent([contract], settings(), EVENTS), contract, RATES))
    for cut in range(len(RATES)):
        first = PolicyAgent([contract], settings(), EVENTS)
        out = feed(first, contract, RATES[: cut + 1])
        state = first.state_records(STATE)
        out += feed(first, contract, RATES[: cut + 1])  # replayed summaries (same offsets): nothing
        again = [
            first.handle(message(summary(contract, i, r), EVENTS, offset=100 + i))
            for i, r in enumerate(RATES[: cut + 1])
        ]
        assert not any(again)  # the same windows republished at new offsets: replays, nothing decided
        restarted = PolicyAgent([contract], settings(), EVENTS)
        restarted.restore(Message(STATE, 0, k, r.value, r.key) for k, r in enumerate(state))
        assert restarted.offsets == {(EVENTS, 0): cut + 1}
        out += feed(restarted, contract, RATES, start=0)  # re-read from the beginning after the restart
        assert decisions(out) == whole, cut


def test_event_ids_are_deterministic(contract: Contract) -> None:
    ids = [[r.headers for r in feed(PolicyAgent([contract], settings(), EVENTS), contract, RATES)] for _ in range(2)]
    assert ids[0] == ids[1]


def test_manual_resolution_by_command(contract: Contract) -> None:
    agent = PolicyAgent([contract], settings(), EVENTS)
    out = feed(agent, contract, [0.0, 0.02])
    incident = agent.book.open_incidents()[f"{contract.id}#window-failing"]
    cmd = policy_command("resolve-incident", incident_id=incident, time=T0, reason="fixed", requested_by="ana")
    out = agent.handle(message(cmd, "dq.commands", 0))
    assert decisions(out) == [("resolved", "window-failing")]
    resolved = next(d for t, d in events(out) if t == str(EventType.POLICY_RESOLVED))
    assert resolved["resolution"]["how"] == "manual" and resolved["resolution"]["by"] == "ana"
    assert agent.handle(message(cmd, "dq.commands", 1)) == []  # the same request again: already resolved


def test_malformed_records_are_skipped_with_a_log_line(contract: Contract, caplog: pytest.LogCaptureFixture) -> None:
    agent = PolicyAgent([contract], settings(), EVENTS)
    garbage = [Message(EVENTS, 0, 0, b"not json", b"k", (("ce_type", b"x"),)), Message(EVENTS, 0, 1, None)]
    bad = summary(contract, 0, 0.02)
    data = event_data(bad)
    del data["window"]
    m = message(type(bad)(dict(bad.get_attributes()), data), EVENTS, 2)
    with caplog.at_level(logging.WARNING, "streams.policies.agent"):
        assert [agent.handle(g) for g in [*garbage, m]] == [[], [], []]
    assert agent.skipped == 3 and caplog.text.count("skipping record") == 3
    assert decisions(feed(agent, contract, RATES[:2], start=0)) == []  # offsets 0, 1 were consumed: skipped
    assert agent.offsets[(EVENTS, 0)] == 3


def test_outbox_delivery_sent_failed_and_redelivered(contract: Contract) -> None:
    hooks = (Webhook(name="chat", kind="slack", url="http://127.0.0.1:9/x"),
             Webhook(name="pd", kind="pagerduty", url="http://127.0.0.1:9/y", actions=("page",)))  # fmt: skip
    clock = [T0.timestamp() + 3600.0]  # the wall clock after the windows (windows beyond it are skewed)
    agent = PolicyAgent([contract], settings(webhooks=hooks, redeliver_after_s=30), EVENTS, now=lambda: clock[0])
    feed(agent, contract, RATES[:3])
    due = agent.due()
    # window-failing (quarantine-stream) reaches chat only; amount-out-of-range (page) reaches both
    assert sorted((h.name, a.policy) for _, h, a in due) == [
        ("chat", "amount-out-of-range"),
        ("chat", "window-failing"),
        ("pd", "amount-out-of-range"),
    ]
    did, _, alert = next(x for x in due if x[1].name == "pd")
    failed = agent.delivered(did, alert, Delivery("pd", False, 4, None, "ConnectionRefusedError"))
    [(_, data)] = events(failed)
    assert (data["status"], data["attempts"], data["channel"]) == ("failed", 4, "webhook")
    assert data["owner"]["owners"] == ["ana"]
    assert did in agent.outbox and did not in [d for d, _, _ in agent.due()]  # waits redeliver_after_s
    assert agent.delivered(did, alert, Delivery("pd", False, 4, None, "again")) == []  # reported once
    clock[0] += 61
    assert did in [d for d, _, _ in agent.due()]
    sent = agent.delivered(did, alert, Delivery("pd", True, 1, 202))
    assert [d["status"] for _, d in events(sent)] == ["sent"] and did not in agent.outbox
    state = {orjson.loads(r.key)[1] for r in agent.state_records(STATE)}
    assert state == {"offset", "policy", "outbox"}
    assert (
        b'qstreams_policy_actions_total{channel="webhook",outcome="failed",target="pd"} 2.0' in agent.metrics.render()
    )


def test_metrics_of_open_incidents_and_states(contract: Contract) -> None:
    agent = PolicyAgent([contract], settings(), EVENTS)
    feed(agent, contract, RATES[:2])  # amount-out-of-range holds on 1 window of its 2
    pending = f'qstreams_policy_state{{contract="{contract.id}",policy="amount-out-of-range",state="pending"}} 1.0'
    assert pending in agent.metrics.render().decode()
    feed(agent, contract, RATES[:3], start=2)
    text = agent.metrics.render().decode()
    assert f'qstreams_policy_open_incidents{{contract="{contract.id}"}} 2.0' in text
    assert f'qstreams_policy_state{{contract="{contract.id}",policy="amount-out-of-range",state="open"}} 1.0' in text
    feed(agent, contract, RATES, start=3)
    text = agent.metrics.render().decode()
    assert f'qstreams_policy_open_incidents{{contract="{contract.id}"}} 0.0' in text
    assert (
        f'qstreams_policy_state{{contract="{contract.id}",policy="amount-out-of-range",state="cooldown"}} 1.0' in text
    )
