"""Red team 10: a window event whose window is not a window (its end at or before its start, or ending years after
it starts) on the quality-event topic. Taken, a window ending in 9999 made every real window of its schema object a
replay for good (the end is the policy's ``last_end``, restored after every restart): each policy of the schema
object blind, silently. Such a record is skipped and counted, as any malformed record."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from streams.contracts.loader import load_contract
from streams.contracts.model import Contract
from streams.events import EventType, event_data, from_kafka
from streams.policies.agent import PolicyAgent
from streams.policies.config import PolicySettings

from .conftest import write
from .summaries import T0, message, summary

EVENTS = "dq.events"


def _bogus(contract: Contract, i: int, end: str) -> object:
    event = summary(contract, i, 0.0)
    data = event_data(event)
    data["window"]["end"] = end
    return type(event)(dict(event.get_attributes()), data)


def _decisions(agent: PolicyAgent, events: list[object]) -> Counter[str]:
    out: Counter[str] = Counter()
    for offset, e in enumerate(events):
        for r in agent.handle(message(e, EVENTS, offset)):  # type: ignore[arg-type]
            if r.topic == EVENTS:
                got = from_kafka(r.key, r.value, r.headers)
                if got.get_type() == EventType.POLICY_TRIGGERED:
                    out[event_data(got)["policy"]["name"]] += 1
    return out


@pytest.mark.parametrize("end", ["9999-12-31T00:00:00Z", "2126-03-01T12:00:00Z", "2026-03-01T11:59:00Z"])
def test_a_window_event_with_a_bogus_end_is_skipped_not_taken(contract: Contract, end: str) -> None:
    agent = PolicyAgent([contract], PolicySettings(), EVENTS, now=(T0 + timedelta(days=1)).timestamp)
    # window 0 clean, then a summary of window 1 whose end is bogus, then window 1 (real) failing
    got = _decisions(agent, [summary(contract, 0, 0.0), _bogus(contract, 1, end), summary(contract, 1, 0.02)])
    assert got["window-failing"] == 1, (got, agent.book.snapshot())
    assert agent.skipped == 1


def test_a_window_from_the_epoch_to_9999_is_skipped_not_taken(contract: Contract) -> None:
    """Aligned (it starts at 0) but longer than the time since the epoch: no stream window is (a window's start is a
    multiple of its length, so a window longer than that starts at 0 and would hold only 1970's records)."""
    agent = PolicyAgent([contract], PolicySettings(), EVENTS, now=(T0 + timedelta(days=1)).timestamp)
    bogus = _bogus(contract, 0, "9999-12-31T00:00:00Z")
    data = event_data(bogus)  # type: ignore[arg-type]
    data["window"]["start"] = "1970-01-01T00:00:00Z"
    bogus = type(bogus)(dict(bogus.get_attributes()), data)  # type: ignore[attr-defined]
    got = _decisions(agent, [bogus, summary(contract, 0, 0.0), summary(contract, 1, 0.02)])
    assert got["window-failing"] == 1, (got, agent.book.snapshot())
    assert agent.skipped == 1


ANY_FAILURE = """\
          - name: any-failure
            when: {metric: rule.failure_rate, rule: "amount:maximum", above: 0.01}
"""


@pytest.mark.parametrize("bad", ["NaN", "nan", "inf", "-Infinity"])
def test_a_non_finite_rate_is_no_clear_window(tmp_path: Path, bad: str) -> None:
    """``"failure_rate": "NaN"`` (a string: JSON has no NaN) read as float NaN: the condition ``above: 0.01`` does not
    hold on NaN, so the window was *clear* and resolved the incident. Silence is not recovery, and neither is a
    value that is not a number: the record is malformed, skipped and counted."""
    contract = load_contract(write(tmp_path, ANY_FAILURE))
    agent = PolicyAgent([contract], PolicySettings(), EVENTS, now=(T0 + timedelta(days=1)).timestamp)
    bogus = summary(contract, 1, 0.0)
    data = event_data(bogus)
    data["checks"][0]["failure_rate"] = bad
    bogus = type(bogus)(dict(bogus.get_attributes()), data)
    kinds = _kinds(agent, [summary(contract, 0, 0.02), bogus])
    assert kinds == [str(EventType.POLICY_TRIGGERED)], (kinds, agent.book.snapshot())
    assert agent.skipped == 1


def _kinds(agent: PolicyAgent, events: list[object]) -> list[str]:
    out = []
    for offset, e in enumerate(events):
        for r in agent.handle(message(e, EVENTS, offset)):  # type: ignore[arg-type]
            if r.topic == EVENTS:
                kind = str(from_kafka(r.key, r.value, r.headers).get_type())
                if kind in (EventType.POLICY_TRIGGERED, EventType.POLICY_RESOLVED):
                    out.append(kind)
    return out


MANY_FAILURES = """\
          - name: many-failures
            when: {metric: rule.failures, rule: "amount:maximum", above: 5}
            for: FOR
"""


@pytest.mark.parametrize("windows", [1, 2])
@pytest.mark.parametrize(
    ("where", "bad"), [("failures", 1e300), ("failures", -3), ("failures", 2**63), ("records", 1e300)]
)
def test_a_count_beyond_64_bits_is_skipped_not_a_poison_pill(tmp_path: Path, windows: int, where: str,
                                                             bad: float) -> None:  # fmt: skip
    """``"failures": 1e300`` read as a 301-digit int: the policy's streak (or its decision's event) held a number
    orjson cannot write, so producing the poll's state records (or the decision) raised, the session died on an
    error that is not Kafka's, and every restart re-read the record and died again: one malformed event stopped the
    agent for good. A count must be a non-negative integer below 2**53; the record is skipped and counted."""
    policy = MANY_FAILURES.replace("FOR", str(windows))
    if where == "records":
        policy = policy.replace('rule.failures, rule: "amount:maximum", above: 5', "window.records, above: 5")
    contract = load_contract(write(tmp_path, policy))
    agent = PolicyAgent([contract], PolicySettings(), EVENTS, now=(T0 + timedelta(days=1)).timestamp)
    bogus = summary(contract, 1, 0.02)
    data = event_data(bogus)
    if where == "records":
        data["records"] = bad
    else:
        data["checks"][0]["failures"] = bad
    bogus = type(bogus)(dict(bogus.get_attributes()), data)
    out = []
    for offset, e in enumerate([summary(contract, 0, 0.02), bogus, *(summary(contract, i, 0.02) for i in (2, 3))]):
        out += agent.handle(message(e, EVENTS, offset))
        out += agent.state_records("dq.state")
    assert agent.skipped == 1
    kinds = [str(from_kafka(r.key, r.value, r.headers).get_type()) for r in out if r.topic == EVENTS]
    assert kinds.count(str(EventType.POLICY_TRIGGERED)) == 1, kinds
