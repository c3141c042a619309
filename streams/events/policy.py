"""Builders of response-policy events: ``policy.triggered`` and ``policy.resolved``.

Plain functions returning CloudEvents whose data validates against
``streams/events/schemas/policy_triggered.json`` / ``policy_resolved.json`` (as
:mod:`streams.events.builders` does for batch events). The policy agent (``streams.policies``,
a layer above) decides; these only render its decisions.

**Deterministic ids.** An event's ``id`` hashes its type and the incident id, which itself
hashes (contract, policy, first window of the trigger streak): each incident yields exactly one
``triggered`` and one ``resolved`` id, however often it is replayed. The ``time`` attribute is
the end of the deciding window (event time), not the wall clock, for the same reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cloudevents.core.v1.event import CloudEvent

from streams.errors import EventError
from streams.events.types import EventSeverity, EventType, context_attributes, event_id, iso_utc, source_urn, to_utc

if TYPE_CHECKING:
    from streams.contracts.model import Contract

__all__ = ["policy_resolved", "policy_triggered"]

_POLICY_KEYS = frozenset(
    {"name", "description", "condition", "metric", "subject", "for", "severity", "action", "model_version",
     "cooldown_seconds", "resolve_after", "resolve_condition"}
)  # fmt: skip
_HOW = ("auto", "manual")


def _common(
    contract: Contract,
    *,
    schema: str,
    incident_id: str,
    policy: Mapping[str, Any],
    windows: Sequence[Mapping[str, Any]],
    opened_at: datetime,
) -> dict[str, Any]:
    missing = _POLICY_KEYS - set(policy)
    if missing:
        raise EventError(f"The policy given to a policy event lacks {sorted(missing)} (pass Policy.as_dict()).")
    try:
        topic = contract.schema(schema).topic
    except KeyError:
        raise EventError(f"Contract {contract.ref} has no schema object {schema!r} for this policy event.") from None
    return {
        "contract": {"id": contract.id, "version": contract.version, "sha256": contract.sha256},
        "schema": schema,
        "topic": topic,
        "incident": {"id": incident_id, "opened_at": iso_utc(opened_at)},
        "policy": {k: policy[k] for k in sorted(_POLICY_KEYS)},
        "action": {"type": policy["action"], "model_version": policy["model_version"]},
        "windows": [{"start": iso_utc(w["start"]), "end": iso_utc(w["end"]), "value": w["value"]} for w in windows],
        "owner": contract.ownership.as_dict(),
    }


def _event(
    event_type: EventType, contract: Contract, data: dict[str, Any], time: datetime, severity: EventSeverity
) -> CloudEvent:
    policy = data["policy"]["name"]
    attributes = context_attributes(
        event_type,
        event_id(str(event_type), data["incident"]["id"]),
        source=source_urn("policy", f"{contract.id}/{policy}"),
        subject=policy,
        time=time,
        contract=contract,
        severity=severity,
    )
    return CloudEvent(attributes, data)


def _severity(policy: Mapping[str, Any]) -> EventSeverity:
    return EventSeverity.ERROR if policy["severity"] == "critical" else EventSeverity(str(policy["severity"]))


def policy_triggered(
    contract: Contract,
    *,
    schema: str,
    incident_id: str,
    policy: Mapping[str, Any],
    windows: Sequence[Mapping[str, Any]],
    opened_at: datetime,
) -> CloudEvent:
    """A ``policy.triggered`` event: the incident ``incident_id`` opened on ``windows`` (``[{start, end, value}]``,
    the ``for`` windows where the condition held). ``severity`` is the policy's (``critical`` as ``error``)."""
    if not windows:
        raise EventError("A policy.triggered event needs the windows that triggered it; none were given.")
    data = _common(
        contract, schema=schema, incident_id=incident_id, policy=policy, windows=windows, opened_at=opened_at
    )
    return _event(EventType.POLICY_TRIGGERED, contract, data, opened_at, _severity(policy))


def policy_resolved(
    contract: Contract,
    *,
    schema: str,
    incident_id: str,
    policy: Mapping[str, Any],
    windows: Sequence[Mapping[str, Any]],
    opened_at: datetime,
    resolved_at: datetime,
    how: str = "auto",
    by: str | None = None,
) -> CloudEvent:
    """A ``policy.resolved`` event: the incident closed ``auto`` (on ``windows``, its clear windows) or
    ``manual`` (``by`` someone; ``windows`` may be empty). Severity ``ok``."""
    if how not in _HOW:
        raise EventError(f"A policy resolution is 'auto' or 'manual', not {how!r}.")
    if to_utc(resolved_at) < to_utc(opened_at):
        raise EventError(
            f"The incident resolves at {iso_utc(resolved_at)}, before it opened at {iso_utc(opened_at)} "
            "(swapped arguments?)."
        )
    data = _common(
        contract, schema=schema, incident_id=incident_id, policy=policy, windows=windows, opened_at=opened_at
    )
    data["resolution"] = {
        "resolved_at": iso_utc(resolved_at),
        "how": how,
        "by": by,
        "duration_seconds": (to_utc(resolved_at) - to_utc(opened_at)).total_seconds(),
    }
    return _event(EventType.POLICY_RESOLVED, contract, data, resolved_at, EventSeverity.OK)
