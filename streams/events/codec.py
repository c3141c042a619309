"""Quality events on the wire: the CloudEvents Kafka protocol binding, binary content mode.

An event travels as one Kafka record:

* **value**: the event data, a JSON object serialized with orjson (UTF-8,
  datetimes as ISO-8601 UTC with a ``Z`` suffix);
* **headers**: ``content-type`` (the ``datacontenttype``, ``application/json``)
  and one ``ce_<attribute>`` header per other attribute: ``ce_specversion``,
  ``ce_id``, ``ce_type``, ``ce_source``, ``ce_subject``, ``ce_time``,
  ``ce_dataschema`` and the extensions ``ce_contractid``, ``ce_contractversion``,
  ``ce_contractsha256``, ``ce_severity`` (and ``ce_rule`` on rule violations);
* **key**: the contract id (the ``contractid`` attribute), so every event of
  one contract lands in one partition and is read in the order it was produced.
  Events without a contract (a lifecycle event of a worker enforcing several
  contracts) are keyed by their ``source``.

The conversion itself is the SDK's (:mod:`cloudevents.core.bindings.kafka`);
this module adapts it to the ``(key, value, headers)`` triples that
kafka-python, aiokafka and confluent-kafka use, and validates event data
against the JSON Schemas shipped in ``streams/events/schemas/``.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from cloudevents.core.bindings import kafka
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from streams.errors import EventDataError, EventError
from streams.events.types import CONTENT_TYPE, SCHEMA_FILES, SPECVERSION, EventType, dataschema_for

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

__all__ = [
    "CloudEvent",
    "KafkaHeaders",
    "event_data",
    "from_kafka",
    "load_schema",
    "to_kafka",
    "validate_event",
]

#: Kafka headers as the Python clients take and give them.
KafkaHeaders = list[tuple[str, bytes]]

_PARTITIONKEY = "partitionkey"
_KNOWN = frozenset(str(t) for t in EventType)
_ORJSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS


class _OrjsonFormat(JSONFormat):
    """The SDK's JSON event format with the data (binary-mode payload) read and written by orjson."""

    def write_data(self, data: dict[str, Any] | str | bytes | None, datacontenttype: str | None) -> bytes:
        """Serialize event data: dicts as compact JSON, str as UTF-8, bytes as they are."""
        if data is None:
            return b""
        if isinstance(data, bytes | bytearray):
            return bytes(data)
        if isinstance(data, str):
            return data.encode("utf-8")
        return orjson.dumps(data, option=_ORJSON_OPTIONS)

    def read_data(self, body: bytes, datacontenttype: str | None) -> dict[str, Any] | str | bytes | None:
        """Parse event data: JSON content types with orjson, anything else as text (or bytes)."""
        if not body:
            return None
        content_type = datacontenttype or self.DEFAULT_CONTENT_TYPE
        if self.JSON_CONTENT_TYPE_PATTERN.match(content_type):
            try:
                parsed: dict[str, Any] = orjson.loads(body)
                return parsed
            except orjson.JSONDecodeError:
                pass
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return body


_FORMAT = _OrjsonFormat()


def _message_key(event: CloudEvent) -> str:
    """The default Kafka key: the ``partitionkey`` extension, else ``contractid``, else ``source``."""
    for name in (_PARTITIONKEY, "contractid"):
        value = event.get_extension(name)
        if value:
            return str(value)
    return event.get_source()


def to_kafka(event: CloudEvent, key: bytes | None = None) -> tuple[bytes | None, bytes, KafkaHeaders]:
    """``(key, value, headers)`` of one Kafka record carrying ``event`` in binary content mode.

    ``key`` defaults to the event's contract id (its ``contractid`` attribute), or
    its ``source`` when it has none; a ``partitionkey`` attribute (set by
    :func:`from_kafka`) is used as the key rather than sent as a header, as the
    CloudEvents partitioning extension prescribes. Produce the triple as is::

        key, value, headers = to_kafka(event)
        producer.send(settings.events_topic, key=key, value=value, headers=headers)
    """
    attributes = dict(event.get_attributes())
    attributes.pop(_PARTITIONKEY, None)
    record_key = key if key is not None else _message_key(event).encode("utf-8")
    message = kafka.to_binary(CloudEvent(attributes, event.get_data()), _FORMAT, key_mapper=lambda _e: None)
    return record_key, message.value, list(message.headers.items())


def from_kafka(
    key: bytes | str | None,
    value: bytes | str | None,
    headers: Iterable[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None] | None,
) -> CloudEvent:
    """The CloudEvent carried by one Kafka record (binary mode; structured mode is accepted too).

    ``headers`` is a client's header list (``[(name, value), ...]``) or a mapping;
    names are matched case-insensitively. The record key, when it is UTF-8, becomes
    the ``partitionkey`` extension attribute (a binary key is not part of the event and is left out).

    The required attributes must be on the record: the SDK would otherwise invent a random ``id``
    (a replay would then not de-duplicate) and ``specversion``; an event without ``time`` keeps
    none (the SDK would stamp the wall clock of the consumer). Raises
    :class:`~cloudevents.core.exceptions.CloudEventValidationError` when the attributes break
    CloudEvents 1.0 and :class:`~streams.errors.EventError` (a ``ValueError``) for every other
    record that is not a CloudEvent (a tombstone, a missing ``id``, headers that are not UTF-8, a
    ``time`` that is not RFC 3339, a structured value that is not a JSON object): nothing else, so
    ``except (CloudEventValidationError, EventError)`` skips every malformed record.
    """
    if value is None:
        raise EventError(
            "A quality event record must have a value, but this one is a tombstone (None): it is not a quality event."
        )
    try:
        pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
        header_map = {str(name).lower(): _bytes(v) for name, v in pairs if v is not None}
        message = kafka.KafkaMessage(headers=header_map, key=None, value=_bytes(value))
        event = kafka.from_kafka(message, _FORMAT, _decoded)
    except (BaseCloudEventException, EventError):
        raise
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:  # UnicodeDecodeError is a ValueError
        raise EventError(f"The record is not a CloudEvent: {type(exc).__name__}: {exc}.") from exc
    assert isinstance(event, CloudEvent)
    partitionkey = _text(key)
    if partitionkey is not None:
        event.get_attributes()[_PARTITIONKEY] = partitionkey
    return event


def _bytes(value: bytes | bytearray | memoryview | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _text(key: bytes | str | None) -> str | None:
    """The record key as text; None when there is none or it is not UTF-8 (a binary key of another producer)."""
    if key is None or isinstance(key, str):
        return key
    try:
        return bytes(key).decode("utf-8")
    except UnicodeDecodeError:
        return None


#: attributes CloudEvents 1.0 requires (the SDK fills in ``id`` and ``specversion`` when they are missing)
_REQUIRED = ("id", "source", "specversion", "type")


def _decoded(attributes: dict[str, Any], data: Any) -> CloudEvent:
    """The event factory of :func:`from_kafka`: refuses missing required attributes, invents no ``time``."""
    missing = [name for name in _REQUIRED if not attributes.get(name)]
    if missing:
        raise EventError(
            f"The record lacks the required CloudEvents attribute(s) {', '.join(missing)} (ce_{missing[0]} header "
            "or envelope field): it is not a CloudEvent, or its headers were stripped on the way."
        )
    timeless = "time" not in attributes
    event = CloudEvent(attributes, data)
    if timeless:
        event.get_attributes().pop("time", None)
    return event


def event_data(event: CloudEvent) -> dict[str, Any]:
    """The data of a quality event as a dict (parsing it first if it arrived as JSON text or bytes)."""
    data = event.get_data()
    if isinstance(data, str | bytes):
        try:
            data = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise EventDataError(
                f"Event {event.get_id()} has data that is not valid JSON ({exc}); it was not built by streams.events."
            ) from exc
    if not isinstance(data, dict):
        raise EventDataError(
            f"Event {event.get_id()} has no JSON object as data (got {type(data).__name__}); it was not built by "
            "streams.events."
        )
    return data


@functools.cache
def _schema_bytes(event_type: str) -> bytes:
    try:
        name = SCHEMA_FILES[EventType(event_type)]
    except ValueError:
        raise EventError(
            f"{event_type!r} is an unknown quality event type; the known types are: "
            f"{', '.join(str(t) for t in EventType)}."
        ) from None
    return importlib.resources.files("streams.events").joinpath("schemas", name).read_bytes()


def load_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the data of ``event_type`` (a fresh copy).

    Raises :class:`~streams.errors.EventError` (a ``ValueError``) if the type is unknown.
    """
    schema: dict[str, Any] = orjson.loads(_schema_bytes(event_type))
    return schema


@functools.cache
def _validator(event_type: str, strict: bool = True) -> Validator:
    from jsonschema import Draft202012Validator, FormatChecker

    schema = load_schema(event_type)
    Draft202012Validator.check_schema(schema)
    if not strict:
        schema = _open(schema)
    validator: Validator = Draft202012Validator(schema, format_checker=FormatChecker())
    return validator


def _open(node: Any) -> Any:
    """``node`` without ``"additionalProperties": false`` anywhere: data fields it does not know are allowed."""
    if isinstance(node, dict):
        return {k: _open(v) for k, v in node.items() if not (k == "additionalProperties" and v is False)}
    if isinstance(node, list):
        return [_open(v) for v in node]
    return node


def validate_event(event: CloudEvent, *, strict: bool = True) -> None:
    """Check a quality event against its type's contract; raise if it breaks it.

    Checks ``specversion`` (1.0), ``datacontenttype`` (JSON), that ``dataschema``
    (when present) names the type's schema, and validates the data against that
    JSON Schema. Raises :class:`~streams.errors.EventError` (a ``ValueError``) for an unknown type or wrong
    attributes and :class:`jsonschema.ValidationError` for data breaking the schema.

    ``strict`` (the default) refuses data fields the shipped schema does not know: what a producer checks
    its events with. A consumer passes ``strict=False``: a producer newer than the consumer's
    quality-streams may add optional fields to a type (a compatible change that keeps the type's ``.v1``),
    which the consumer must ignore, not refuse; every field the schema knows is still checked.
    """
    event_type = event.get_type()
    schema_id = dataschema_for(EventType(event_type)) if event_type in _KNOWN else None
    if schema_id is None:
        raise EventError(
            f"Event {event.get_id()} has an unknown quality event type {event_type!r} (from a newer producer?)."
        )
    if event.get_specversion() != SPECVERSION:
        raise EventError(f"Event {event.get_id()} has specversion {event.get_specversion()!r}; expected {SPECVERSION}.")
    content_type = event.get_datacontenttype()
    if content_type is not None and content_type.split(";")[0].strip() != CONTENT_TYPE:
        raise EventError(f"Event {event.get_id()} has datacontenttype {content_type!r}; expected {CONTENT_TYPE}.")
    dataschema = event.get_dataschema()
    if dataschema is not None and dataschema != schema_id:
        raise EventError(
            f"Event {event.get_id()} names dataschema {dataschema!r}; expected {schema_id!r} for its type."
        )
    _validator(event_type, strict).validate(event_data(event))
