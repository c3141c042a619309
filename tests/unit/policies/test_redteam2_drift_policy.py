"""Red-team pass 2: a policy on a ``drift.*`` metric (docs/policies.md's own example, ``drift.psi`` of
``amount``) is judged on the ``distribution.drift`` events of its windows. The agent read ``window.summary``
events only, whose observations carry no drift metric: such a policy was accepted and never triggered."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cloudevents.core.v1.event import CloudEvent

from streams.contracts.model import Contract
from streams.events import EventType
from streams.events.types import EventSeverity, context_attributes, event_id, iso_utc, source_urn
from streams.policies.agent import PolicyAgent

from .summaries import T0, message, summary
from .test_agent import EVENTS, decisions, events, settings


def drift(contract: Contract, i: int, psi: float | None) -> CloudEvent:
    """The distribution.drift event of window ``i`` (60 s from T0): ``amount``'s PSI against the reference."""
    start = T0 + timedelta(seconds=60 * i)
    end = start + timedelta(seconds=60)
    schema = contract.schemas[0]
    drifted = psi is not None and psi >= 0.2
    field: dict[str, Any] = {
        "field": "amount", "kind": "numeric", "verdict": "drift" if drifted else "ok", "method": "psi",
        "reference_count": 5000, "current_count": 1000,
        "metrics": [{"metric": "psi", "value": psi, "threshold": 0.2, "drifted": drifted},
                    {"metric": "wasserstein", "value": 0.01, "threshold": None, "drifted": False}],
        "new_categories": [], "vanished_categories": [],
    }  # fmt: skip
    data = {
        "contract": {"id": contract.id, "version": contract.version, "sha256": contract.sha256},
        "schema": schema.name, "topic": schema.topic, "window": {"start": iso_utc(start), "end": iso_utc(end)},
        "reference": {"sha256": "0" * 64, "rows": 5000}, "records": 1000,
        "verdicts": {"ok": int(not drifted), "drift": int(drifted), "insufficient_data": 0},
        "drifted": ["amount"] if drifted else [], "fields": [field],
    }  # fmt: skip
    eid = event_id(str(EventType.DISTRIBUTION_DRIFT), contract.ref, schema.name, iso_utc(start))
    attributes = context_attributes(
        EventType.DISTRIBUTION_DRIFT, eid, source=source_urn("topic", schema.topic), subject=schema.topic, time=end,
        contract=contract, severity=EventSeverity.WARNING if drifted else EventSeverity.OK,
    )  # fmt: skip
    return CloudEvent(attributes, data)


# amount-drift (above 0.2, for 3; resolve.after = for): opens on window 3; window 5 has no value (not clear:
# the count of clear windows starts again), so it resolves on window 8
PSI = [0.1, 0.3, 0.25, 0.4, 0.05, None, 0.05, 0.1, 0.0]


def test_a_drift_policy_triggers_on_distribution_drift_events_once(contract: Contract) -> None:
    agent = PolicyAgent([contract], settings(), EVENTS)
    out, offset = [], 0
    for i, psi in enumerate(PSI):  # each window's summary (no rule failing), then its drift event
        for event in (summary(contract, i, 0.0), drift(contract, i, psi)):
            out += agent.handle(message(event, EVENTS, offset))
            offset += 1
    assert decisions(out) == [("triggered", "amount-drift"), ("resolved", "amount-drift")]
    resolved = next(d for t, d in events(out) if t == str(EventType.POLICY_RESOLVED))
    assert [w["start"] for w in resolved["windows"]] == [iso_utc(T0 + timedelta(seconds=60 * i)) for i in (6, 7, 8)]
    commands = [d for t, d in events(out, "dq.commands") if t == str(EventType.POLICY_COMMAND)]
    assert [(c["command"], c["model_version"]) for c in commands] == [("retrain-candidate", "fraud-v3")]
    triggered = next(d for t, d in events(out) if t == str(EventType.POLICY_TRIGGERED))
    assert [w["value"] for w in triggered["windows"]] == [0.3, 0.25, 0.4]
    # the rule-based policies still read the summaries: amount-out-of-range saw six windows, none replayed
    state = agent.book.states[f"{contract.id}#amount-out-of-range"]
    assert state.replayed == 0 and state.last_end == T0 + timedelta(seconds=60 * len(PSI))
    # a replay of the drift events decides nothing again
    again = [r for i, psi in enumerate(PSI) for r in agent.handle(message(drift(contract, i, psi), EVENTS, 100 + i))]
    assert decisions(again) == []
