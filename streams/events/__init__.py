"""Quality events: CloudEvents 1.0 that stream workers publish about the data they enforce.

Producers (the stream worker) build events with :mod:`streams.events.builders`
and produce them with :func:`to_kafka`; consumers (inference gateways, on-call,
retraining and rollback automation, dashboards, auditors) read them with
:func:`from_kafka`, get the payload with :func:`event_data` and may check it
with :func:`validate_event`. The event types, attributes and data fields are
documented in ``docs/events.md``; the data of each type has a JSON Schema in
``streams/events/schemas/``.
"""

from __future__ import annotations

from streams.events.builders import REDACTED, batch_summary, lifecycle, rule_violations, schema_drift
from streams.events.codec import CloudEvent, KafkaHeaders, event_data, from_kafka, load_schema, to_kafka, validate_event
from streams.events.policy import policy_resolved, policy_triggered
from streams.events.types import CONTENT_TYPE, EventSeverity, EventType, LifecyclePhase, dataschema_for

__all__ = [
    "CONTENT_TYPE",
    "REDACTED",
    "CloudEvent",
    "EventSeverity",
    "EventType",
    "KafkaHeaders",
    "LifecyclePhase",
    "batch_summary",
    "dataschema_for",
    "event_data",
    "from_kafka",
    "lifecycle",
    "load_schema",
    "policy_resolved",
    "policy_triggered",
    "rule_violations",
    "schema_drift",
    "to_kafka",
    "validate_event",
]
