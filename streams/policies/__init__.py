"""Response policies: declared in the contract, decided over windows, rendered as policy events.

* :mod:`streams.policies.spec` — the ``qstreams.policies`` schema-level custom property parsed
  into frozen :class:`Policy` objects, with ``file:line`` findings for lint;
* :mod:`streams.policies.metrics` — the metric catalog and the :class:`Observation` of a window;
* :mod:`streams.policies.incidents` — the pure incident state machine (one open incident per
  (contract, policy), ``for`` windows, hysteresis, cooldown, replays recognised by window) and
  its serialisable snapshot;
* :mod:`streams.policies.emit` — decisions as ``io.qualitystreams.policy.triggered.v1`` /
  ``policy.resolved.v1`` CloudEvents;
* :mod:`streams.policies.observe` — a ``window.summary`` event's data as an :class:`Observation`;
* :mod:`streams.policies.agent` — the agent's logic without Kafka (records in, records out, its
  state as compacted-topic records, the webhook outbox); :mod:`streams.policies.runner` runs it on
  Kafka with transactions (``qstreams policies run``);
* :mod:`streams.policies.actions` — webhook payloads (generic, Slack, PagerDuty v2, Alertmanager)
  and their delivery; :mod:`streams.policies.config` — the agent's settings (``STREAMS_POLICY_*``);
* :mod:`streams.policies.control` — ``quarantine-stream`` on the workers (control topic, stage);
* :mod:`streams.policies.tail` — ``qstreams events tail``; :mod:`streams.policies.telemetry` — metrics.

See ``docs/policies.md``.
"""

from __future__ import annotations

from streams.policies.emit import decision_event
from streams.policies.incidents import (
    Decision,
    DecisionKind,
    IncidentBook,
    PolicyState,
    WindowValue,
    incident_id,
    resolve_manually,
    step,
)
from streams.policies.metrics import METRICS, Metric, Observation, RuleOutcome
from streams.policies.spec import (
    POLICIES_KEY,
    Action,
    Condition,
    Policy,
    PolicySeverity,
    parse_duration,
    parse_policies,
    policy_findings,
)

__all__ = [
    "METRICS",
    "POLICIES_KEY",
    "Action",
    "Condition",
    "Decision",
    "DecisionKind",
    "IncidentBook",
    "Metric",
    "Observation",
    "Policy",
    "PolicySeverity",
    "PolicyState",
    "RuleOutcome",
    "WindowValue",
    "decision_event",
    "incident_id",
    "parse_duration",
    "parse_policies",
    "policy_findings",
    "resolve_manually",
    "step",
]
