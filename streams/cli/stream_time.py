"""Stream time assembled for the worker: the top layer joins the windows (merging) and the events (summaries).

:func:`summary_record` turns a window verdict into the ``window.summary`` record the
stream-time observer publishes; :func:`kafka_observers` builds the observer for a worker
on a real cluster (stream-time topics created compacted, read with a manual consumer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from streams.events.codec import to_kafka
from streams.events.drift import window_drift_events
from streams.events.window import window_summary, window_violations
from streams.pipeline.records import OutRecord

if TYPE_CHECKING:
    from streams.contracts.model import Contract
    from streams.kafka.observers import WorkerObserver
    from streams.observability import Metrics
    from streams.pipeline.binding import Binding
    from streams.settings import Settings
    from streams.windows.finalize import WindowVerdict

__all__ = ["kafka_observers", "summary_record"]


def summary_record(events_topic: str) -> Callable[[Contract, WindowVerdict, str], list[OutRecord]]:
    """What the stream-time observer calls to publish a verdict: the ``window.summary`` record for
    ``events_topic``, a ``rule.violation`` record per rule that failed in the window (scope ``window``), then the
    window's drift events (schema drift, and distribution drift and prediction confidence when the binding
    monitors drift)."""

    def build(contract: Contract, verdict: WindowVerdict, worker_id: str) -> list[OutRecord]:
        events = [
            window_summary(contract, verdict, worker_id=worker_id),
            *window_violations(contract, verdict, worker_id=worker_id),
            *window_drift_events(contract, verdict, worker_id=worker_id),
        ]
        return [OutRecord(events_topic, value, key, tuple(headers)) for key, value, headers in map(to_kafka, events)]

    return build


def kafka_observers(
    settings: Settings, bindings: Sequence[Binding], worker_id: str, metrics: Metrics | None = None
) -> list[WorkerObserver]:
    """The stream-time observer of a worker on a real cluster (none when ``STREAMS_STREAM_TIME=false``);
    given the worker's ``metrics``, its stream-time series and drift gauges are registered in their registry."""
    if not settings.stream_time:
        return []
    from streams.windows.kafka_state import KafkaStateReader, ensure_state_topics
    from streams.windows.metrics import StreamTimeMetrics
    from streams.windows.observer import install

    async def prepare() -> None:
        await ensure_state_topics(settings)

    return [
        install(settings, bindings, summary_record(settings.events_topic), KafkaStateReader(settings),
                worker_id=worker_id, prepare=prepare,
                metrics=StreamTimeMetrics(metrics.registry) if metrics is not None else None,
                registry=metrics.registry if metrics is not None else None)
    ]  # fmt: skip
