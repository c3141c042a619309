"""Red team 10: one window judged by two contract versions (a rolling upgrade, a worker restarted with a new version
mid-window: ``docs/stream-time.md``, "Contract versions") gets one ``window.summary`` per version, each counting the
records its version judged. The agent takes the first summary of a window and counts the second as a replay, so the
records the second version judged are never seen by a policy: 997 records of the new version failing in the
window, the incident never opens because the old version's 3 records were clean and came first."""

from __future__ import annotations

from datetime import timedelta

import pytest

from streams.contracts.model import Contract
from streams.events import EventType, event_data, from_kafka
from streams.policies.agent import PolicyAgent
from streams.policies.config import PolicySettings

from .summaries import T0, message, summary

EVENTS = "dq.events"


@pytest.mark.xfail(
    strict=True,
    reason="the agent judges one summary per window; per-version summaries of one window "
    "are not pooled (needs the summary to name the window's versions, as model events do)",
)
def test_a_window_judged_by_two_versions_is_judged_on_both(contract: Contract) -> None:
    agent = PolicyAgent([contract], PolicySettings(), EVENTS, now=(T0 + timedelta(days=1)).timestamp)
    old = summary(contract, 1, 0.0, records=3)
    data = event_data(old)
    data["contract"]["version"] = "0.9.0"
    old = type(old)(dict(old.get_attributes()) | {"id": "old-version-summary"}, data)
    events = [summary(contract, 0, 0.0), old, summary(contract, 1, 0.5, records=997)]
    triggered = []
    for offset, e in enumerate(events):
        for r in agent.handle(message(e, EVENTS, offset)):
            if r.topic == EVENTS:
                got = from_kafka(r.key, r.value, r.headers)
                if got.get_type() == EventType.POLICY_TRIGGERED:
                    triggered.append(event_data(got)["policy"]["name"])
    assert "window-failing" in triggered, agent.book.snapshot()
