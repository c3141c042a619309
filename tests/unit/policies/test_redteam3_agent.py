"""Red team 3: the agent on the windows the workers really publish (skewed windows, pooled versions, restarts)."""

from __future__ import annotations

import orjson
import pytest

from streams.contracts.loader import parse_contract
from streams.contracts.model import Contract
from streams.errors import ContractError
from streams.events import EventType
from streams.pipeline.records import Message
from streams.policies.agent import PolicyAgent
from streams.policies.control import Engaged

from .conftest import CONTRACT
from .summaries import T0, message, summary
from .test_agent import EVENTS, STATE, decisions, events, settings


def test_a_window_only_skewed_records_reached_does_not_blind_the_policies(contract: Contract) -> None:
    # the workers publish a window that only records with event times a year ahead reached (an idle close);
    # taken, it made every real window after it a replay: the stream was quarantined on the skewed window's
    # verdict and no policy saw anything for a year
    now = T0.timestamp() + 3600.0
    agent = PolicyAgent([contract], settings(), EVENTS, now=lambda: now)
    out = agent.handle(message(summary(contract, 0, 0.0), EVENTS, offset=0))
    out += agent.handle(message(summary(contract, 365 * 24 * 60, 0.05), EVENTS, offset=1))
    out += agent.handle(message(summary(contract, 1, 0.05), EVENTS, offset=2))
    out += agent.handle(message(summary(contract, 2, 0.05), EVENTS, offset=3))
    assert decisions(out) == [("triggered", "window-failing"), ("triggered", "amount-out-of-range")]
    assert agent.ahead == 1


def test_two_versions_of_one_contract_are_refused(contract: Contract) -> None:
    # their policies share incident keys: the second version's policies were silently never judged (each of its
    # windows a "replay" of the first's), and its events rendered with whichever version came last
    newer = parse_contract(CONTRACT.replace("version: 1.0.0", "version: 1.1.0"), path="payments-1.1.yaml")
    with pytest.raises(ContractError, match="given twice"):
        PolicyAgent([contract, newer], settings(), EVENTS)


def _without_window_failing(contract: Contract, action: str | None) -> Contract:
    text = CONTRACT
    block = """          - name: window-failing
            when: {metric: window.failed}
            action: quarantine-stream
            severity: error
"""
    assert block in text
    new = "" if action is None else block.replace("quarantine-stream", action)
    return parse_contract(text.replace(block, new), path="payments.yaml")


@pytest.mark.parametrize("action", [None, "notify"])
def test_a_quarantine_whose_policy_is_gone_is_released_once_at_restart(contract: Contract, action: str | None) -> None:
    # window-failing quarantines the stream; the contract is then changed (the policy removed, or made a notify)
    # while the incident is open: its state was dropped (or resolved without a tombstone) and the stream stayed
    # quarantined for good, with nothing left to release it
    first = PolicyAgent([contract], settings(), EVENTS)
    out = first.handle(message(summary(contract, 0, 0.05), EVENTS, offset=0))
    control = [Message(r.topic, 0, i, r.value, r.key) for i, r in enumerate(x for x in out if x.topic == "dq.control")]
    assert [orjson.loads(r.value or b"null")["engaged"] for r in control] == [True]
    state = [Message(STATE, 0, i, r.value, r.key) for i, r in enumerate(first.state_records(STATE))]

    changed = _without_window_failing(contract, action)
    agent = PolicyAgent([changed], settings(), EVENTS)
    agent.restore(state)
    released = agent.reconcile(control)
    tombstones = [r for r in released if r.topic == "dq.control"]
    assert [(orjson.loads(r.key or b""), r.value) for r in tombstones] == [
        ([contract.id, "payments", "window-failing"], None)]  # fmt: skip
    (action_event,) = [d for t, d in events(released) if t == str(EventType.POLICY_ACTION)]
    assert (action_event["status"], action_event["policy"], action_event["channel"]) == (
        "released", "window-failing", "quarantine")  # fmt: skip
    engaged = Engaged()
    for r in [*control, *tombstones]:
        engaged.apply(r.key, r.value)
    assert engaged.policies(contract.id, "payments") == []
    # a quarantine an open incident holds stays; another agent's contract's is not touched
    assert PolicyAgent([contract], settings(), EVENTS).reconcile([]) == []
    kept = PolicyAgent([contract], settings(), EVENTS)
    kept.restore(state)
    other = Message("dq.control", 0, 9, b'{"engaged": true, "incident": "x"}', b'["urn:other", "s", "p"]')
    assert kept.reconcile([*control, other]) == []
