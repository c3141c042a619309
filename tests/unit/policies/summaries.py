"""window.summary events as the workers publish them (schema-valid), for the policy agent's tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cloudevents.core.v1.event import CloudEvent

from streams.contracts.model import Contract
from streams.events.codec import event_data, to_kafka
from streams.events.types import EventSeverity, EventType, context_attributes, event_id, iso_utc, source_urn
from streams.pipeline.records import Message

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RULE = "amount:maximum"


def summary(contract: Contract, i: int, rate: float, *, records: int = 1000, seconds: int = 60) -> CloudEvent:
    """The summary of window ``i`` (``seconds`` long from T0) where ``rate`` of the records break amount:maximum."""
    start = T0 + timedelta(seconds=seconds * i)
    end = start + timedelta(seconds=seconds)
    failures = round(rate * records)
    schema = contract.schemas[0]
    check: dict[str, Any] = {
        "name": RULE, "column": "amount", "check": "less_than_or_equal_to", "severity": "error",
        "failures": failures, "failure_rate": failures / records, "passed": failures == 0, "value": None,
        "threshold": "0", "dimension": None, "error": None, "evaluation": "window",
        "first_offending": [{"partition": 0, "offset": 5}] if failures else [],
    }  # fmt: skip
    data = {
        "contract": {"id": contract.id, "version": contract.version, "sha256": contract.sha256},
        "schema": schema.name, "topic": schema.topic,
        "window": {"start": iso_utc(start), "end": iso_utc(end)},
        "records": records, "rows": records, "valid": records - failures, "quarantined": failures,
        "dead_lettered": 0, "late": 0, "skewed": 0, "passed": failures == 0, "checks": [check],
        "owner": contract.owner.as_dict(), "partitions": [{"partition": 0, "first": 0, "last": records - 1}],
        "finalized_by": "w-test",
    }  # fmt: skip
    eid = event_id(str(EventType.WINDOW_SUMMARY), contract.ref, schema.name, iso_utc(start))
    attributes = context_attributes(
        EventType.WINDOW_SUMMARY, eid, source=source_urn("topic", schema.topic), subject=schema.topic, time=end,
        contract=contract, severity=EventSeverity.OK if failures == 0 else EventSeverity.ERROR,
    )  # fmt: skip
    return CloudEvent(attributes, data)


def message(event: CloudEvent, topic: str, offset: int, partition: int = 0) -> Message:
    key, value, headers = to_kafka(event)
    return Message(topic, partition, offset, value, key, tuple(headers))


def by_text(
    event: CloudEvent, texts: Sequence[tuple[str, str]], version: str | None = None, sha256: str | None = None
) -> CloudEvent:
    """``event`` (a summary) as judged by the contract text ``version``/``sha256`` (default: its own), naming ``texts``
    (``(version, sha256)`` each) as every text its window is published for (``contract_versions``), as the workers do
    after an upgrade; its id is the text's (one summary per (window, text))."""
    data = dict(event_data(event))
    contract = data["contract"] = dict(data["contract"])
    contract["version"] = version or contract["version"]
    contract["sha256"] = sha256 or contract["sha256"]
    data["contract_versions"] = [{"version": v, "sha256": s} for v, s in sorted(texts)]
    eid = event_id(str(event.get_id()), contract["version"], contract["sha256"])
    return CloudEvent(dict(event.get_attributes()) | {"id": eid}, data)
