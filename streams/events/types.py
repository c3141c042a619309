"""Names and wire conventions shared by the quality-event builders, the Kafka codec and consumers.

Every quality event is a CloudEvents 1.0 event whose ``type`` is one of
:class:`EventType`. The ``type`` string carries a major version suffix
(``.v1``): a backwards-incompatible change of an event's data becomes a new
type (``...summary.v2``) published side by side with the old one, so
consumers can migrate at their own pace. Adding optional data fields is not a
breaking change; consumers must ignore fields they do not know.

The drift types (``distribution.drift``, ``prediction.confidence``, ``model.performance``) have
their data schemas and data builders (:mod:`streams.profiles.evidence`): the worker publishes the
first two per window, the labels joiner (``qstreams performance run``) the third. The policy agent
(:mod:`streams.policies`) emits ``policy.action`` (an action taken or failed: a webhook, a command,
quarantine engaged or released) on the quality-event topic and ``policy.command`` (retrain /
rollback requests, manual resolutions) on the command topic.

Each new type gets a member here, an entry in :data:`SCHEMA_FILES`, a JSON
Schema in ``streams/events/schemas/`` and a section in ``docs/events.md``.

The helpers at the bottom (:func:`context_attributes`, :func:`event_id`,
:func:`iso_utc`, :func:`source_urn`) fix how every type renders its attributes.
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import orjson

from streams.errors import EventError
from streams.formats.names import MAX_FIELD_CHARS, cut_text, field_name

if TYPE_CHECKING:
    from streams.contracts.model import Contract

__all__ = [
    "CONTENT_TYPE",
    "EXTENSIONS",
    "MAX_CASE_CHARS",
    "MAX_FIELD_CHARS",
    "MAX_MS",
    "MIN_MS",
    "SCHEMA_FILES",
    "SPECVERSION",
    "EventSeverity",
    "EventType",
    "LifecyclePhase",
    "Offsets",
    "context_attributes",
    "cut_text",
    "dataschema_for",
    "event_id",
    "field_name",
    "iso_utc",
    "json_number",
    "ms_utc",
    "offset_ranges",
    "parse_utc",
    "source_urn",
    "to_utc",
]

SPECVERSION: Final = "1.0"
#: ``datacontenttype`` of every quality event (the data is a JSON object).
CONTENT_TYPE: Final = "application/json"

#: Extension attributes the builders set (lowercase alphanumerics, as the spec requires).
EXTENSIONS: Final = ("contractid", "contractversion", "contractsha256", "severity", "rule")


#: Offset ranges of a batch: partition -> (first, last), both inclusive.
Offsets = Mapping[int, tuple[int, int]]


class EventType(enum.StrEnum):
    """The ``type`` attribute of every quality event."""

    BATCH_SUMMARY = "io.qualitystreams.batch.summary.v1"
    RULE_VIOLATION = "io.qualitystreams.rule.violation.v1"
    SCHEMA_DRIFT = "io.qualitystreams.schema.drift.v1"
    WORKER_LIFECYCLE = "io.qualitystreams.worker.lifecycle.v1"
    POLICY_TRIGGERED = "io.qualitystreams.policy.triggered.v1"
    POLICY_RESOLVED = "io.qualitystreams.policy.resolved.v1"
    WINDOW_SUMMARY = "io.qualitystreams.window.summary.v1"
    POLICY_ACTION = "io.qualitystreams.policy.action.v1"
    POLICY_COMMAND = "io.qualitystreams.policy.command.v1"
    # data schemas shipped (streams.profiles.evidence builds their data); not yet emitted by the worker
    DISTRIBUTION_DRIFT = "io.qualitystreams.distribution.drift.v1"
    PREDICTION_CONFIDENCE = "io.qualitystreams.prediction.confidence.v1"
    MODEL_PERFORMANCE = "io.qualitystreams.model.performance.v1"

    @property
    def dataschema(self) -> str:
        """The ``dataschema`` attribute: the ``$id`` of this type's JSON Schema."""
        return dataschema_for(self)


#: The JSON Schema file (in ``streams/events/schemas/``) of each event type's data.
SCHEMA_FILES: Final[dict[EventType, str]] = {
    EventType.BATCH_SUMMARY: "batch_summary.json",
    EventType.RULE_VIOLATION: "rule_violation.json",
    EventType.SCHEMA_DRIFT: "schema_drift.json",
    EventType.WORKER_LIFECYCLE: "worker_lifecycle.json",
    EventType.POLICY_TRIGGERED: "policy_triggered.json",
    EventType.POLICY_RESOLVED: "policy_resolved.json",
    EventType.WINDOW_SUMMARY: "window_summary.json",
    EventType.POLICY_ACTION: "policy_action.json",
    EventType.POLICY_COMMAND: "policy_command.json",
    EventType.DISTRIBUTION_DRIFT: "distribution_drift.json",
    EventType.PREDICTION_CONFIDENCE: "prediction_confidence.json",
    EventType.MODEL_PERFORMANCE: "model_performance.json",
}


def dataschema_for(event_type: str) -> str:
    """``urn:qstreams:schema:<type>``: the ``dataschema`` attribute and JSON Schema ``$id`` of a type."""
    return f"urn:qstreams:schema:{event_type}"


class EventSeverity(enum.StrEnum):
    """The ``severity`` extension attribute: what a consumer should page, alert or log on.

    Rule severities (:class:`~streams.contracts.model.Severity`) plus ``ok`` for
    events that report nothing wrong.
    """

    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        """0 (ok) to 3 (error): compare severities with this."""
        return _RANK[self]

    @classmethod
    def highest(cls, severities: Iterable[str]) -> EventSeverity:
        """The most severe of ``severities`` (strings or enums); ``ok`` when empty."""
        return max((cls(str(s)) for s in severities), key=lambda s: s.rank, default=cls.OK)


_RANK: Final = {EventSeverity.OK: 0, EventSeverity.INFO: 1, EventSeverity.WARNING: 2, EventSeverity.ERROR: 3}


class LifecyclePhase(enum.StrEnum):
    """The ``phase`` of a worker lifecycle event."""

    STARTED = "started"
    STOPPED = "stopped"
    PARTITIONS_ASSIGNED = "partitions_assigned"
    PARTITIONS_REVOKED = "partitions_revoked"
    BINDING_FAILED = "binding_failed"


def to_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already (Kafka timestamps are epoch ms)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def ms_utc(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime, within what ``datetime`` holds: the end of the window holding
    9999-12-31T23:59:59 (a common sentinel) is the year 10000, read as 9999-12-31T23:59:59.999999 (it raised, and
    a window's events could never be built). Exact to the millisecond (a float of seconds is not, past the year
    2242: 9999-12-31T23:59:59.998 read as .997985)."""
    if ms >= MAX_MS:
        return datetime.max.replace(tzinfo=UTC)
    if ms <= MIN_MS:
        return datetime.min.replace(tzinfo=UTC)
    return _EPOCH + timedelta(milliseconds=ms)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: the epoch milliseconds a ``datetime`` holds (0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z)
MAX_MS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
MIN_MS = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)


def iso_utc(moment: datetime) -> str:
    """ISO-8601 in UTC with a ``Z`` suffix: how datetimes appear in event data and the ``ce_time`` header."""
    text = to_utc(moment).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def parse_utc(text: Any) -> datetime:
    """The moment an event's ISO-8601 text names (``Z`` or an offset; naive read as UTC), in UTC: the inverse of
    :func:`iso_utc`. Raises ``ValueError`` on text that is no ISO-8601 moment."""
    return to_utc(datetime.fromisoformat(str(text).replace("Z", "+00:00")))


def event_id(*parts: Any) -> str:
    """A deterministic event id: the first 32 hex digits of the SHA-256 of the canonical JSON of ``parts``."""
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()[:32]


#: a failure case (a record's value) longer than this is cut in ``rule.violation`` samples
MAX_CASE_CHARS: Final = 1024


def source_urn(kind: str, name: str) -> str:
    """``urn:qstreams:<kind>:<name>``, the ``source`` attribute (``kind`` is ``topic`` or ``worker``)."""
    return f"urn:qstreams:{kind}:{quote(name, safe=':@.-_~')}"


def context_attributes(
    event_type: EventType,
    eid: str,
    *,
    source: str,
    subject: str | None,
    time: datetime,
    contract: Contract | None,
    severity: EventSeverity,
    rule: str | None = None,
) -> dict[str, Any]:
    """The context attributes of a quality event, in the order they go on the wire."""
    attributes: dict[str, Any] = {"specversion": SPECVERSION, "id": eid, "type": str(event_type), "source": source}
    if subject:
        attributes["subject"] = subject
    attributes |= {"time": to_utc(time), "datacontenttype": CONTENT_TYPE, "dataschema": event_type.dataschema}
    if contract is not None:
        attributes |= {"contractid": contract.id, "contractversion": contract.version}
        attributes["contractsha256"] = contract.sha256
    attributes["severity"] = str(severity)
    if rule is not None:
        attributes["rule"] = rule
    return attributes


def json_number(value: Any) -> float | int | None:
    """A JSON number: ints stay ints, other numbers become floats; None, NaN and infinities become null."""
    if value is None:
        return None
    if isinstance(value, int):
        return int(value)
    number = float(value)
    return number if math.isfinite(number) else None


def offset_ranges(offsets: Offsets) -> list[dict[str, int]]:
    """``[{partition, first, last}]`` sorted by partition; rejects empty or inverted ranges."""
    if not offsets:
        raise EventError("A batch event needs the offset range of at least one partition; none was given.")
    out = []
    for partition, (first, last) in sorted(offsets.items()):
        if partition < 0 or first < 0 or last < first:
            raise EventError(
                f"A bad offset range for partition {partition}: ({first}, {last}); partitions and offsets are "
                "non-negative and the last offset is not before the first."
            )
        out.append({"partition": int(partition), "first": int(first), "last": int(last)})
    return out
