"""Builders of the policy agent's own events: ``policy.action`` and ``policy.command``.

* ``io.qualitystreams.policy.action.v1`` (quality-event topic): what the agent did about a
  decision: a webhook ``sent`` or ``failed`` (after its retries), a command ``requested``, a
  stream's quarantine ``engaged`` or ``released``. The id hashes (incident, decision, channel,
  target, status): the same outcome reported twice (a restart) is one event for a consumer that
  de-duplicates by id.
* ``io.qualitystreams.policy.command.v1`` (command topic): a request: ``retrain-candidate`` /
  ``rollback-candidate`` of a model version (for automation), or ``resolve-incident`` (a person,
  through ``qstreams incidents resolve ID``, for the agent). Its id hashes (command, incident).

Data schemas: ``streams/events/schemas/policy_action.json`` / ``policy_command.json``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from cloudevents.core.v1.event import CloudEvent

from streams.errors import EventError
from streams.events.types import EventSeverity, EventType, context_attributes, event_id, source_urn

if TYPE_CHECKING:
    from streams.contracts.model import Contract

__all__ = ["ACTION_STATUSES", "CHANNELS", "COMMANDS", "policy_action", "policy_command"]

CHANNELS = ("webhook", "command", "quarantine")
ACTION_STATUSES = ("sent", "failed", "requested", "engaged", "released")
COMMANDS = ("retrain-candidate", "rollback-candidate", "resolve-incident")


def _contract(contract: Contract) -> dict[str, str]:
    return {"id": contract.id, "version": contract.version, "sha256": contract.sha256}


def policy_action(
    contract: Contract,
    *,
    schema: str,
    incident_id: str,
    policy: str,
    decision: str,
    action: str,
    model_version: str | None,
    channel: str,
    target: str,
    status: str,
    time: datetime,
    attempts: int = 0,
    error: str | None = None,
) -> CloudEvent:
    """One ``policy.action`` event (severity ``error`` when it failed, ``info`` otherwise)."""
    if channel not in CHANNELS or status not in ACTION_STATUSES or decision not in ("triggered", "resolved"):
        raise EventError(
            f"A policy action is one of {CHANNELS} with a status of {ACTION_STATUSES} answering 'triggered' or "
            f"'resolved'; got {channel!r}, {status!r}, {decision!r}."
        )
    data: dict[str, Any] = {
        "contract": _contract(contract),
        "schema": schema,
        "topic": contract.schema(schema).topic,
        "incident": {"id": incident_id},
        "policy": policy,
        "decision": decision,
        "action": {"type": action, "model_version": model_version},
        "channel": channel,
        "target": target,
        "status": status,
        "attempts": int(attempts),
        "error": error,
        "owner": contract.ownership.as_dict(),
    }
    attributes = context_attributes(
        EventType.POLICY_ACTION,
        event_id(str(EventType.POLICY_ACTION), incident_id, decision, channel, target, status),
        source=source_urn("policy", f"{contract.id}/{policy}"),
        subject=policy,
        time=time,
        contract=contract,
        severity=EventSeverity.ERROR if status == "failed" else EventSeverity.INFO,
    )
    return CloudEvent(attributes, data)


def policy_command(
    command: str,
    *,
    incident_id: str,
    time: datetime,
    reason: str,
    contract: Contract | None = None,
    schema: str | None = None,
    policy: str | None = None,
    model_version: str | None = None,
    requested_by: str | None = None,
) -> CloudEvent:
    """One ``policy.command`` event; its Kafka key is the contract id (the incident id without a contract)."""
    if command not in COMMANDS:
        raise EventError(f"A policy command is one of {COMMANDS}, not {command!r}.")
    if command == "rollback-candidate" and not model_version:
        raise EventError("A rollback-candidate command must name the model_version to roll back.")
    data: dict[str, Any] = {
        "command": command,
        "incident": {"id": incident_id},
        "model_version": model_version,
        "contract": _contract(contract) if contract is not None else None,
        "schema": schema,
        "policy": policy,
        "owner": contract.ownership.as_dict() if contract is not None else None,
        "requested_by": requested_by,
        "reason": reason,
    }
    attributes = context_attributes(
        EventType.POLICY_COMMAND,
        event_id(str(EventType.POLICY_COMMAND), command, incident_id),
        source=source_urn("policy", f"{contract.id}/{policy}" if contract is not None else f"incident/{incident_id}"),
        subject=policy or incident_id,
        time=time,
        contract=contract,
        severity=EventSeverity.INFO,
    )
    if contract is None:
        attributes["partitionkey"] = incident_id
    return CloudEvent(attributes, data)
