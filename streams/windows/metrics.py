"""Prometheus metrics of stream time, registered in the worker's registry (``/metrics``).

Labels are bounded: source topics, uniqueness columns, record kinds::

    qstreams_window_finalized_lag_seconds{topic}     histogram: wall clock at publication - window end
    qstreams_windows_finalized_total{topic}          window summaries published by this worker
    qstreams_windows_open{topic}                     windows held open by the merger (on the worker merging the stream)
    qstreams_event_time_records_total{topic,kind}    kind: late | skewed | no_event_time
    qstreams_unique_keys{topic,column}               uniqueness claims held for the assigned partitions
    qstreams_unique_state_bytes{topic,column}        their memory (hashes, offsets, buckets)
    qstreams_state_records_total{topic,kind}         records written to the stream-time topics, by kind:
                                                     partial | heartbeat | closed | contract | tombstone | changelog
    qstreams_state_bytes_total{topic,internal_topic} bytes (key + value) written there: rate() of it is the
                                                     changelog write rate

``late``: the record's window was already final on its partition when it arrived (counted
in the window being filled, routed on its own rules); ``skewed``: its event time is beyond
wall clock + ``STREAMS_MAX_CLOCK_SKEW_SECONDS`` and did not advance the watermark;
``no_event_time``: the event-time field was missing or unparseable (quarantined).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.pipeline.records import OutRecord

__all__ = ["StreamTimeMetrics"]

_LAG_SECONDS = (0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)


class StreamTimeMetrics:
    """Stream-time series of one worker (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.finalized_lag = Histogram(
            "qstreams_window_finalized_lag_seconds",
            "From the end of a window (event time) to its summary being published (wall clock).",
            ["topic"], buckets=_LAG_SECONDS, registry=r,
        )  # fmt: skip
        self.finalized = Counter(
            "qstreams_windows_finalized", "Window summaries published by this worker.", ["topic"], registry=r
        )
        self.open = Gauge(
            "qstreams_windows_open", "Windows held open by the merger of the stream on this worker.", ["topic"],
            registry=r,
        )  # fmt: skip
        self.event_time = Counter(
            "qstreams_event_time_records", "Records marked on event time: late, skewed or without an event time.",
            ["topic", "kind"], registry=r,
        )  # fmt: skip
        self.unique_keys = Gauge(
            "qstreams_unique_keys", "Uniqueness claims held for the assigned partitions.", ["topic", "column"],
            registry=r,
        )  # fmt: skip
        self.unique_bytes = Gauge(
            "qstreams_unique_state_bytes", "Memory of the uniqueness claims held.", ["topic", "column"], registry=r
        )
        self.state_records = Counter(
            "qstreams_state_records", "Records written to the stream-time topics, by kind.", ["topic", "kind"],
            registry=r,
        )  # fmt: skip
        self.state_bytes = Counter(
            "qstreams_state_bytes", "Bytes (key + value) written to the stream-time topics.",
            ["topic", "internal_topic"], registry=r,
        )  # fmt: skip

    def declare(self, topic: str, columns: Iterable[str]) -> None:
        """Create a binding's series at zero, so dashboards see them before the first event."""
        for kind in ("late", "skewed", "no_event_time"):
            self.event_time.labels(topic, kind)
        for column in columns:
            self.unique_keys.labels(topic, column).set(0)
            self.unique_bytes.labels(topic, column).set(0)
        self.finalized.labels(topic)
        self.open.labels(topic).set(0)

    def marked(self, topic: str, *, late: int, skewed: int, no_event_time: int) -> None:
        for kind, n in (("late", late), ("skewed", skewed), ("no_event_time", no_event_time)):
            if n:
                self.event_time.labels(topic, kind).inc(n)

    def uniqueness(self, topic: str, sizes: Mapping[str, tuple[int, int]]) -> None:
        """``sizes``: column -> (claims, bytes) over the assigned partitions."""
        for column, (keys, nbytes) in sizes.items():
            self.unique_keys.labels(topic, column).set(keys)
            self.unique_bytes.labels(topic, column).set(nbytes)

    def wrote(self, topic: str, kind: str, record: OutRecord) -> None:
        self.state_records.labels(topic, kind).inc()
        self.state_bytes.labels(topic, record.topic).inc(len(record.key or b"") + len(record.value or b""))

    def published(self, topic: str, *, window_end_ms: int, now_ms: int) -> None:
        self.finalized.labels(topic).inc()
        self.finalized_lag.labels(topic).observe(max(now_ms - window_end_ms, 0) / 1000)
