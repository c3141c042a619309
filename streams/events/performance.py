"""``io.qualitystreams.model.performance.v1``: realized performance of one model version over one window.

Built by the performance joiner (:mod:`streams.performance`) when a window of prediction time is
final (every prediction of it matched to its label or past the horizon, every label of it matched
or orphaned). The data is :func:`streams.profiles.evidence.performance_data` plus ``scope``
(``window``), the labels topic and the horizon. Conventions of the other window events: times
ISO-8601 UTC with ``Z``, Kafka key the contract id, and a deterministic id per (contract version,
schema object, predictions topic, window, model version), so a window published again after a crash
de-duplicates on the consumer side. Severity ``ok``; ``info`` when no prediction of the window was
labelled (only unmatched predictions or orphan labels to report).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from cloudevents.core.v1.event import CloudEvent

from streams.events.drift import drift_event_id
from streams.events.types import EventSeverity, EventType, context_attributes, ms_utc, source_urn
from streams.profiles.evidence import performance_data

if TYPE_CHECKING:
    from streams.contracts.model import Contract
    from streams.profiles.performance import PerformancePartial

__all__ = ["model_performance"]


def model_performance(
    contract: Contract, schema: str, topic: str, start_ms: int, end_ms: int, model_version: str,
    partial: PerformancePartial, *, labels_topic: str, horizon_ms: int, window_versions: Sequence[str] = (),
) -> CloudEvent:  # fmt: skip
    """The ``model.performance`` event of one window ``[start_ms, end_ms)`` of ``topic`` (predictions), one version.

    ``window_versions``: every version the window's events are published for (this one included), so that a
    consumer pooling the versions (the policy agent) knows when it has them all; omitted when empty."""
    start, end = (ms_utc(ms) for ms in (start_ms, end_ms))
    data = performance_data(partial, model_version, contract, schema, topic, (start, end))
    data |= {"scope": "window", "labels_topic": labels_topic, "horizon_seconds": horizon_ms / 1000,
             "owner": contract.owner.as_dict()}  # fmt: skip
    if window_versions:
        data["window_versions"] = sorted(set(window_versions))
    eid = drift_event_id(EventType.MODEL_PERFORMANCE, contract, schema, topic, start_ms, end_ms, model_version)
    severity = EventSeverity.OK if partial.count else EventSeverity.INFO
    attributes = context_attributes(
        EventType.MODEL_PERFORMANCE, eid, source=source_urn("topic", topic), subject=topic, time=end,
        contract=contract, severity=severity,
    )  # fmt: skip
    return CloudEvent(attributes, data)
