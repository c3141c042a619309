"""Red team 10: one window judged by two contract versions (a rolling upgrade, a worker restarted with a new version
mid-window: ``docs/stream-time.md``, "Contract versions") gets one ``window.summary`` per version, each counting the
records its version judged. The agent takes the first summary of a window and counts the second as a replay, so the
records the second version judged are never seen by a policy: 997 records of the new version failing in the
window, the incident never opens because the old version's 3 records were clean and came first. The summaries now
name every text their window is published for (``contract_versions``) and the agent pools them."""

from __future__ import annotations

from datetime import timedelta

from streams.contracts.model import Contract
from streams.events import EventType, event_data, from_kafka
from streams.policies.agent import PolicyAgent
from streams.policies.config import PolicySettings

from .summaries import T0, by_text, message, summary

EVENTS = "dq.events"
OLD_SHA = "0" * 64


def test_a_window_judged_by_two_versions_is_judged_on_both(contract: Contract) -> None:
    agent = PolicyAgent([contract], PolicySettings(), EVENTS, now=(T0 + timedelta(days=1)).timestamp)
    texts = [("0.9.0", OLD_SHA), (contract.version, contract.sha256)]  # the workers name both (contract_versions)
    old = by_text(summary(contract, 1, 0.0, records=3), texts, "0.9.0", OLD_SHA)
    events = [summary(contract, 0, 0.0), old, by_text(summary(contract, 1, 0.5, records=997), texts)]
    triggered = []
    for offset, e in enumerate(events):
        for r in agent.handle(message(e, EVENTS, offset)):
            if r.topic == EVENTS:
                got = from_kafka(r.key, r.value, r.headers)
                if got.get_type() == EventType.POLICY_TRIGGERED:
                    triggered.append(event_data(got)["policy"]["name"])
    assert "window-failing" in triggered, agent.book.snapshot()
