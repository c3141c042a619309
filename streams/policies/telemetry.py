"""Prometheus metrics of the policy agent, in their own registry (``/metrics`` of ``qstreams policies run``)::

qstreams_policy_open_incidents{contract}              gauge: incidents open now
qstreams_policy_state{contract,policy,state}          1 for the policy's state: ok|pending|open|cooldown
qstreams_policy_decisions_total{contract,policy,kind} kind: triggered | resolved
qstreams_policy_actions_total{channel,target,outcome} webhook rounds sent|failed; commands, quarantines sent
qstreams_policy_skipped_records_total                 malformed records skipped on the input topics
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from streams.policies.incidents import PolicyState

if TYPE_CHECKING:
    from streams.policies.incidents import IncidentBook

__all__ = ["STATES", "PolicyMetrics", "policy_phase"]

STATES = ("ok", "pending", "open", "cooldown")


def policy_phase(state: PolicyState) -> str:
    """``open``, ``pending`` (the condition holds, not yet for ``for`` windows), ``cooldown`` or ``ok``."""
    if state.incident is not None:
        return "open"
    if state.streak:
        return "pending"
    if state.cooldown_until is not None and state.last_end is not None and state.last_end < state.cooldown_until:
        return "cooldown"
    return "ok"


class PolicyMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.open_incidents = Gauge("qstreams_policy_open_incidents", "Incidents open now.", ["contract"], registry=r)
        self.state = Gauge("qstreams_policy_state", "1 for the state a policy is in.",
                           ["contract", "policy", "state"], registry=r)  # fmt: skip
        self.decisions = Counter("qstreams_policy_decisions", "Incidents triggered and resolved.",
                                 ["contract", "policy", "kind"], registry=r)  # fmt: skip
        self.actions = Counter("qstreams_policy_actions", "Actions taken, by outcome.",
                               ["channel", "target", "outcome"], registry=r)  # fmt: skip
        self.skipped = Counter("qstreams_policy_skipped_records", "Malformed input records skipped.", registry=r)

    def update(self, book: IncidentBook) -> None:
        open_by: dict[str, int] = {}
        for policy in book.policies:
            phase = policy_phase(book.states.get(policy.key, PolicyState()))
            open_by[policy.contract] = open_by.get(policy.contract, 0) + (phase == "open")
            for s in STATES:
                self.state.labels(policy.contract, policy.name, s).set(1.0 if s == phase else 0.0)
        for contract, n in open_by.items():
            self.open_incidents.labels(contract).set(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)
