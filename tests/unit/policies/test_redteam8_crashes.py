"""Red team 8: the agent's exactly-once per incident under crashes injected between deciding and committing, and
between a webhook delivery and the record of its outcome, with webhooks that fail then succeed and restarts
that restore the outbox from the state records.

A simulated runner commits what :class:`PolicyAgent` answers (outputs plus state records) or drops it all (a
crash before the transaction commits, the agent rebuilt from the committed state records); a fake webhook
receiver fails at random. Checked against a run without crashes: the same ``policy.triggered`` /
``policy.resolved`` events (same ids, each committed once), every decision delivered to each webhook that wants
it at least once, a resolution never before its trigger, ``policy.action`` ``sent`` only for a delivery the
receiver got (ids deterministic, so a re-report after a crash is the same event).
"""

from __future__ import annotations

import random
from collections import Counter

from streams.contracts.model import Contract
from streams.events import EventType, event_data, from_kafka
from streams.pipeline.records import Message, OutRecord
from streams.policies.actions import Delivery
from streams.policies.agent import PolicyAgent
from streams.policies.config import PolicySettings, Webhook

from .summaries import T0, message, summary

EVENTS, STATE = "dq.events", "dq.state"
HOOKS = (Webhook(name="chat", kind="slack", url="http://127.0.0.1:9/x"),
         Webhook(name="pd", kind="pagerduty", url="http://127.0.0.1:9/y", actions=("page",)))  # fmt: skip
DECISIONS = (str(EventType.POLICY_TRIGGERED), str(EventType.POLICY_RESOLVED))


def _settings() -> PolicySettings:
    return PolicySettings(control_topic="dq.control", command_topic="dq.commands", webhooks=HOOKS,
                          redeliver_after_s=30, max_delivery_rounds=1000)  # fmt: skip


class Run:
    """One simulated agent deployment: a committed log, a clock, a webhook receiver."""

    def __init__(self, contract: Contract, rng: random.Random | None, crash: float) -> None:
        self.contract, self.rng, self.crash = contract, rng, crash
        self.log: list[OutRecord] = []
        self.clock = [T0.timestamp() + 10 * 86400.0]
        self.received: list[tuple[str, str, str]] = []  # (webhook, incident, decision) the receiver accepted
        self.restarts = 0
        self.agent = self._restart()

    def _restart(self) -> PolicyAgent:
        agent = PolicyAgent([self.contract], _settings(), EVENTS, now=lambda: self.clock[0])
        state = [r for r in self.log if r.topic == STATE]
        agent.restore(Message(STATE, 0, i, r.value, r.key) for i, r in enumerate(state))
        self.restarts += 1
        return agent

    def _commit(self, out: list[OutRecord]) -> bool:
        out = out + self.agent.state_records(STATE)
        if self.rng is not None and self.rng.random() < self.crash:
            self.agent = self._restart()  # the transaction never committed
            return False
        self.log += out
        return True

    def _deliver(self) -> None:
        for did, hook, alert in self.agent.due():
            ok = self.rng is None or self.rng.random() < 0.6
            if ok:
                self.received.append((hook.name, alert.incident_id, alert.decision))
            result = Delivery(hook.name, ok, 1, 200 if ok else None, None if ok else "refused")
            if not self._commit(self.agent.delivered(did, alert, result)):
                return

    def feed(self, messages: list[Message]) -> None:
        i = 0
        while i < len(messages):
            self.clock[0] += 20
            start = self.agent.offsets.get((EVENTS, 0), 0)
            batch = messages[start : start + (self.rng.randint(1, 3) if self.rng else 1)]
            if not batch:
                break
            if self._commit([r for m in batch for r in self.agent.handle(m)]):
                self._deliver()
            i = self.agent.offsets.get((EVENTS, 0), 0)
        for _ in range(200):  # drain the outbox
            self.clock[0] += 31
            self._deliver()
            if not self.agent.outbox:
                break

    def events(self, types: tuple[str, ...]) -> list[tuple[str, str, dict]]:  # type: ignore[type-arg]
        out = []
        for r in self.log:
            if r.topic == EVENTS:
                e = from_kafka(r.key, r.value, r.headers)
                if e.get_type() in types:
                    out.append((e.get_type(), e.get_id(), event_data(e)))
        return out


def _rates(rng: random.Random, n: int) -> list[float]:
    return [rng.choice([0.0, 0.0, 0.003, 0.008, 0.02, 0.05]) for _ in range(n)]


def test_decisions_exactly_once_and_deliveries_at_least_once_under_crashes(contract: Contract) -> None:
    cases = decided = crashed = 0
    for seed in range(40):
        rng = random.Random(seed)
        rates = _rates(rng, 30)
        messages = [message(summary(contract, i, r), EVENTS, offset=i) for i, r in enumerate(rates)]
        reference = Run(contract, None, 0.0)
        reference.feed(messages)
        want = [(t, eid) for t, eid, _ in reference.events(DECISIONS)]
        run = Run(contract, rng, 0.3)
        run.feed(messages)
        got = [(t, eid) for t, eid, _ in run.events(DECISIONS)]
        assert got == want, seed  # each decision committed exactly once, in order
        wanted = {(h, i, d) for h, i, d in reference.received}
        assert {(h, i, d) for h, i, d in run.received} == wanted, seed  # every delivery at least once
        first = {k: run.received.index(k) for k in wanted}
        for hook, incident, decision in wanted:
            if decision == "resolved" and (hook, incident, "triggered") in first:
                assert first[(hook, incident, "triggered")] < first[(hook, incident, "resolved")], seed
        sent = {(d["target"], d["incident"]["id"], d["decision"])
                for _, _, d in run.events((str(EventType.POLICY_ACTION),))
                if d["channel"] == "webhook" and d["status"] == "sent"}  # fmt: skip
        assert sent <= wanted and not run.agent.outbox, seed
        ids = Counter(eid for _, eid, d in run.events((str(EventType.POLICY_ACTION),)) if d["status"] == "sent")
        assert len(ids) == len(sent), seed  # a re-reported delivery is the same event (its id)
        cases += 1
        decided += len(want)
        crashed += run.restarts - 1
    assert cases == 40 and decided > 80 and crashed > 100
