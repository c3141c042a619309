"""Decisions of the incident state machine rendered as ``policy.triggered`` / ``policy.resolved`` events."""

from __future__ import annotations

from cloudevents.core.v1.event import CloudEvent

from streams.contracts.model import Contract
from streams.errors import EventError
from streams.events.policy import policy_resolved, policy_triggered
from streams.policies.incidents import Decision, DecisionKind

__all__ = ["decision_event"]


def decision_event(decision: Decision, contract: Contract) -> CloudEvent:
    """The CloudEvent of one decision; ``contract`` is the version whose window decided (owner, sha256)."""
    policy = decision.policy
    if contract.id != policy.contract:
        raise EventError(f"Decision of a policy of {policy.contract!r} rendered with contract {contract.id!r}.")
    windows = [{"start": w.start, "end": w.end, "value": w.value} for w in decision.windows]
    common = {
        "schema": policy.schema,
        "incident_id": decision.incident_id,
        "policy": policy.as_dict(),
        "windows": windows,
        "opened_at": decision.opened_at,
    }
    if decision.kind is DecisionKind.TRIGGERED:
        return policy_triggered(contract, **common)  # type: ignore[arg-type]
    return policy_resolved(
        contract,
        resolved_at=decision.window_end,
        how=decision.how,
        by=decision.by,
        **common,  # type: ignore[arg-type]
    )
