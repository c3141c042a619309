"""One window's ``window.summary`` events of several contract texts (an upgrade mid-window) pooled by the agent
(``streams/policies/texts.py``): judged once, on every text's records, when every text the summaries name is in."""

from __future__ import annotations

from datetime import timedelta

from cloudevents.core.v1.event import CloudEvent

from streams.contracts.model import Contract
from streams.events import EventType, event_data, from_kafka
from streams.events.codec import validate_event
from streams.pipeline.records import Message, OutRecord
from streams.policies.agent import PolicyAgent
from streams.policies.config import PolicySettings
from streams.policies.metrics import Observation, RuleOutcome
from streams.policies.texts import ContractPool

from .summaries import RULE, T0, by_text, message, summary

EVENTS, STATE = "dq.events", "dq.state"
OLD = ("0.9.0", "0" * 64)


def _agent(contract: Contract) -> PolicyAgent:
    return PolicyAgent([contract], PolicySettings(), EVENTS, now=(T0 + timedelta(days=1)).timestamp)


def _upgrade(contract: Contract, i: int, old_rate: float, new_rate: float) -> list[CloudEvent]:
    """Window ``i``'s two summaries: 3 records judged by 0.9.0, 997 by the agent's version; both name both texts."""
    texts = [OLD, (contract.version, contract.sha256)]
    return [by_text(summary(contract, i, old_rate, records=3), texts, *OLD),
            by_text(summary(contract, i, new_rate, records=997), texts)]  # fmt: skip


def _feed(agent: PolicyAgent, events: list[CloudEvent], first: int = 0) -> list[tuple[int, str, str]]:
    """``(offset, decision, policy)`` of every decision the agent makes on ``events`` (at offsets from ``first``)."""
    out = []
    for offset, e in enumerate(events, start=first):
        for r in agent.handle(message(e, EVENTS, offset)):
            if r.topic == EVENTS:
                got = from_kafka(r.key, r.value, r.headers)
                if got.get_type() in (EventType.POLICY_TRIGGERED, EventType.POLICY_RESOLVED):
                    out.append((offset, str(got.get_type()).split(".")[-2], event_data(got)["policy"]["name"]))
    return out


def _restarted(agent: PolicyAgent, contract: Contract, state: list[OutRecord]) -> PolicyAgent:
    """A new agent restored from the state records ``agent`` produced (``state``: those before, plus its last)."""
    records = [*state, *agent.state_records(STATE)]
    fresh = _agent(contract)
    fresh.restore(Message(STATE, 0, i, r.value, r.key, ()) for i, r in enumerate(records))
    return fresh


def test_the_summaries_name_their_texts_as_the_schema_allows(contract: Contract) -> None:
    for e in _upgrade(contract, 1, 0.0, 0.5):
        validate_event(e)
        assert [t["version"] for t in event_data(e)["contract_versions"]] == ["0.9.0", contract.version]


def test_two_clean_texts_open_nothing_and_the_window_is_judged_once(contract: Contract) -> None:
    agent = _agent(contract)
    assert _feed(agent, [summary(contract, 0, 0.0), *_upgrade(contract, 1, 0.0, 0.0)]) == []
    state = agent.book.states[f"{contract.id}#window-failing"]
    assert (state.last_end, state.replayed) == (T0 + timedelta(seconds=120), 0)  # pooled: no replay
    assert agent.texts.open == {}


def test_an_old_clean_text_and_a_new_failing_one_open_the_incident_once(contract: Contract) -> None:
    agent = _agent(contract)
    events = [summary(contract, 0, 0.0), *_upgrade(contract, 1, 0.0, 0.5), *_upgrade(contract, 2, 0.0, 0.5)]
    got = _feed(agent, events)
    # window 1 is judged when its second summary is in (offset 2); amount-out-of-range needs 2 windows (offset 4)
    assert got == [(2, "triggered", "window-failing"), (4, "triggered", "amount-out-of-range")]
    incident = agent.book.states[f"{contract.id}#amount-out-of-range"].incident
    assert incident is not None  # the pooled rate: the summed failures over the summed rows (498 of 1000)
    assert [w.value for w in incident.windows] == [498 / 1000, 498 / 1000]


def test_a_restart_between_the_two_summaries_loses_nothing(contract: Contract) -> None:
    """The old text's records fail, the new text's are clean: without the open window in the state, the restarted
    agent would judge the window on the clean text alone (or not at all before the next window)."""
    first = _agent(contract)
    old, new = _upgrade(contract, 1, 0.5, 0.0)
    assert _feed(first, [summary(contract, 0, 0.0), old]) == []
    assert (contract.id, "payments") in first.texts.open
    again = _restarted(first, contract, [])
    assert _feed(again, [new], first=2) == [(2, "triggered", "window-failing")]
    # and restarted once more after the decision: the window is closed for good (no record of it left)
    assert _restarted(again, contract, []).texts.open == {}


def test_a_replay_of_both_summaries_decides_nothing_again(contract: Contract) -> None:
    agent = _agent(contract)
    events = [summary(contract, 0, 0.0), *_upgrade(contract, 1, 0.0, 0.5)]
    assert _feed(agent, events) == [(2, "triggered", "window-failing")]
    state = [*agent.state_records(STATE)]
    assert _feed(agent, events[1:], first=3) == []  # published again (a new merger after a crash)
    assert agent.book.states[f"{contract.id}#window-failing"].replayed == 1  # judged once more: a replay
    restarted = _restarted(agent, contract, state)
    assert _feed(restarted, events[1:], first=5) == []


def test_a_summary_naming_one_text_is_judged_as_before(contract: Contract) -> None:
    """One text named (no upgrade), or none (an older worker): each summary judged as it comes; a second summary of
    the window is a replay, as it always was."""
    own = [(contract.version, contract.sha256)]
    plain = [summary(contract, 0, 0.0), summary(contract, 1, 0.0, records=3), summary(contract, 1, 0.5)]
    named = [by_text(e, own) for e in plain]
    for events in (plain, named):
        agent = _agent(contract)
        assert _feed(agent, events) == []  # window 1's second summary is a replay
        assert agent.book.states[f"{contract.id}#window-failing"].replayed == 1
        assert agent.texts.open == {}
        assert not [r for r in agent.state_records(STATE) if b"texts" in (r.key or b"")]  # nothing pooled, no state


def test_a_text_that_never_comes_is_closed_by_the_next_window(contract: Contract) -> None:
    agent = _agent(contract)
    old, _ = _upgrade(contract, 1, 0.5, 0.0)
    assert _feed(agent, [summary(contract, 0, 0.0), old]) == []
    got = _feed(agent, [summary(contract, 2, 0.0)], first=2)
    assert got == [(2, "triggered", "window-failing"), (2, "resolved", "window-failing")]
    incident_windows = agent.book.states[f"{contract.id}#window-failing"]
    assert incident_windows.last_end == T0 + timedelta(seconds=180)


def _obs(records: int, rules: dict[str, RuleOutcome], fresh: float | None = None) -> Observation:
    return Observation("urn:c", "s", T0, T0 + timedelta(minutes=1), "v", records=records, quarantined=1, late=2,
                       rules=rules, metrics={} if fresh is None else {"freshness.seconds": fresh},
                       source="window.summary")  # fmt: skip


def test_pooled_figures_are_sums_and_rates_over_summed_rows_never_a_mean_of_rates() -> None:
    pool = ContractPool()
    texts = [{"version": "1", "sha256": "a" * 64}, {"version": "2", "sha256": "b" * 64}]

    def data(version: str, sha: str, drifted: bool) -> dict[str, object]:
        return {"contract": {"version": version, "sha256": sha}, "contract_versions": texts,
                "schema_drifted": drifted}  # fmt: skip

    one = {RULE: RuleOutcome(1, 1 / 10, False, "warning"), "rows": RuleOutcome(1, 0.0, False, "error"),
           "only_old": RuleOutcome(2, 0.2, False, "error")}  # fmt: skip
    two = {RULE: RuleOutcome(0, 0.0, True, "error"), "rows": RuleOutcome(0, 0.0, True, "error")}
    assert pool.take(_obs(10, one, 30.0), data("1", "a" * 64, False)) == []  # waits for text 2
    [(pooled, clean)] = pool.take(_obs(90, two, 12.5), data("2", "b" * 64, False))
    assert (pooled.records, pooled.quarantined, pooled.late, clean) == (100, 2, 4, True)
    assert pooled.metrics == {"freshness.seconds": 12.5}
    assert pooled.rules[RULE] == RuleOutcome(1, 1 / 100, False, "warning")  # failed in one: failed, its severity
    assert pooled.rules["rows"] == RuleOutcome(1, 0.0, False, "error")  # a dataset metric: rate 0 by convention
    assert pooled.rules["only_old"] == one["only_old"]  # one text's rule: that text's outcome
    assert pooled.value("window.failed") is True  # an error-severity rule failed under a text
