"""Actions that reach the world: webhook payloads (pure) and their delivery (retries, timeouts, backoff).

An :class:`Alert` is a decision as people read it: what opened or closed, on which contract and
policy, and who answers for it (owner, support channel, runbook URL: every alert carries them).
:func:`payload` renders it for one :class:`~streams.policies.config.Webhook` kind:

* ``generic``: the alert as a JSON object;
* ``slack``: a Slack-compatible incoming-webhook message (``text`` plus ``blocks``);
* ``pagerduty``: a PagerDuty Events API v2 event (``trigger`` / ``resolve``, ``dedup_key`` = incident
  id, so a redelivery after a restart is the same PagerDuty incident);
* ``alertmanager``: an Alertmanager ``/api/v2/alerts`` body (``endsAt`` set on resolution; the
  ``incident`` label keeps a redelivery the same alert).

:func:`deliver` POSTs it with a timeout per attempt and exponential backoff between attempts; it
never raises, it returns a :class:`Delivery` (sent or failed, attempts, the last error).
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any

from streams.contracts.model import Contract
from streams.events.types import iso_utc
from streams.policies.config import Webhook, WebhookKind
from streams.policies.incidents import Decision, DecisionKind

__all__ = ["Alert", "Delivery", "alert_of", "deliver", "payload"]

_PD_SEVERITY = {"critical": "critical", "error": "error", "warning": "warning", "info": "info"}


@dataclass(frozen=True, slots=True)
class Alert:
    decision: str  # triggered | resolved
    incident_id: str
    event_id: str
    contract: str
    contract_version: str
    schema: str
    topic: str
    policy: str
    description: str | None
    condition: str
    severity: str
    action: str
    model_version: str | None
    owner: str | None  # the owners (or the team) as one line
    channel: str | None
    runbook_url: str | None
    support_url: str | None
    opened_at: str
    resolved_at: str | None
    how: str | None
    windows: tuple[tuple[str, str, float | bool | None], ...]

    @property
    def summary(self) -> str:
        what = "opened" if self.decision == "triggered" else "resolved"
        return f"[{self.severity}] {self.contract} / {self.schema}: policy {self.policy} {what} ({self.condition})"


def alert_of(decision: Decision, contract: Contract, event_id: str) -> Alert:
    """The alert of a decision; ``contract`` gives the ownership, ``event_id`` the decision event's id."""
    p, own = decision.policy, contract.ownership
    owner = ", ".join(own.owners) if own.owners else own.team
    resolved = decision.kind is DecisionKind.RESOLVED
    return Alert(
        decision=str(decision.kind), incident_id=decision.incident_id, event_id=event_id, contract=contract.id,
        contract_version=decision.contract_version or contract.version, schema=p.schema,
        topic=contract.schema(p.schema).topic, policy=p.name, description=p.description,
        condition=p.condition.describe(), severity=str(p.severity), action=str(p.action), model_version=p.model_version,
        owner=owner, channel=own.support_channel, runbook_url=own.runbook_url, support_url=own.support_url,
        opened_at=iso_utc(decision.opened_at), resolved_at=iso_utc(decision.window_end) if resolved else None,
        how=decision.how if resolved else None,
        windows=tuple((iso_utc(w.start), iso_utc(w.end), w.value) for w in decision.windows),
    )  # fmt: skip


def payload(alert: Alert, webhook: Webhook) -> Any:
    """The JSON body ``webhook`` receives for ``alert``."""
    if webhook.kind is WebhookKind.SLACK:
        return _slack(alert)
    if webhook.kind is WebhookKind.PAGERDUTY:
        return _pagerduty(alert, webhook)
    if webhook.kind is WebhookKind.ALERTMANAGER:
        return _alertmanager(alert)
    body = asdict(alert)
    body["windows"] = [{"start": s, "end": e, "value": v} for s, e, v in alert.windows]
    return body


def _slack(a: Alert) -> dict[str, Any]:
    icon = ":rotating_light:" if a.decision == "triggered" else ":white_check_mark:"
    lines = [
        f"{icon} *{a.summary}*",
        f"*Owner:* {a.owner or 'unowned'}   *Channel:* {a.channel or '-'}   *Action:* {a.action}"
        + (f" ({a.model_version})" if a.model_version else ""),
        f"*Runbook:* {a.runbook_url or '-'}   *Incident:* `{a.incident_id}`",
    ]
    if a.description:
        lines.insert(1, a.description)
    text = "\n".join(lines)
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def _details(a: Alert) -> dict[str, Any]:
    return {
        "owner": a.owner, "channel": a.channel, "runbook_url": a.runbook_url, "support_url": a.support_url,
        "contract_version": a.contract_version, "topic": a.topic, "action": a.action,
        "model_version": a.model_version, "condition": a.condition, "event_id": a.event_id,
        "windows": [{"start": s, "end": e, "value": v} for s, e, v in a.windows],
    }  # fmt: skip


def _pagerduty(a: Alert, webhook: Webhook) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": webhook.token.get_secret_value() if webhook.token else "",
        "event_action": "trigger" if a.decision == "triggered" else "resolve",
        "dedup_key": a.incident_id,
    }
    if a.decision == "triggered":
        body["payload"] = {
            "summary": a.summary[:1024], "source": a.topic, "severity": _PD_SEVERITY.get(a.severity, "warning"),
            "timestamp": a.opened_at, "component": a.contract, "group": a.schema, "class": a.policy,
            "custom_details": _details(a),
        }  # fmt: skip
        if a.runbook_url:
            body["links"] = [{"href": a.runbook_url, "text": "Runbook"}]
    return body


def _alertmanager(a: Alert) -> list[dict[str, Any]]:
    alert: dict[str, Any] = {
        "labels": {"alertname": a.policy, "contract": a.contract, "schema": a.schema, "topic": a.topic,
                   "severity": a.severity, "action": a.action, "incident": a.incident_id},
        "annotations": {"summary": a.summary, "description": a.description or a.condition, "owner": a.owner or "",
                        "channel": a.channel or "", "runbook_url": a.runbook_url or ""},
        "startsAt": a.opened_at,
    }  # fmt: skip
    if a.resolved_at is not None:
        alert["endsAt"] = a.resolved_at
    if a.runbook_url:
        alert["generatorURL"] = a.runbook_url
    return [alert]


@dataclass(frozen=True, slots=True)
class Delivery:
    webhook: str
    ok: bool
    attempts: int
    status: int | None = None
    error: str | None = None


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # http(s) only (Webhook.url)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return int(response.status)


async def deliver(webhook: Webhook, body: Any, *, timeout_s: float, retries: int, backoff_s: float) -> Delivery:
    """POST ``body`` as JSON to ``webhook``: ``1 + retries`` attempts, ``backoff_s`` doubling between them.

    A 2xx answer is delivered; a 4xx other than 408 / 429 is not retried (the request itself is wrong);
    anything else (5xx, refused connection, timeout) is retried.
    """
    data = json.dumps(body, separators=(",", ":")).encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": "quality-streams-policy-agent"}
    if webhook.token is not None and webhook.kind in (WebhookKind.GENERIC, WebhookKind.ALERTMANAGER):
        headers["Authorization"] = f"Bearer {webhook.token.get_secret_value()}"
    error, status = "not attempted", None
    for attempt in range(1, retries + 2):
        try:
            status = await asyncio.to_thread(_post, webhook.url, data, headers, timeout_s)
            return Delivery(webhook.name, True, attempt, status)
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code} {exc.reason}"
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                return Delivery(webhook.name, False, attempt, status, error)
        except (OSError, ValueError) as exc:  # URLError, refused, timeout, a bad URL
            status, error = None, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        if attempt <= retries:
            await asyncio.sleep(backoff_s * 2 ** (attempt - 1))
    return Delivery(webhook.name, False, retries + 1, status, error[:300])
