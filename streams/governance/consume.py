"""The Kafka loop of ``qstreams archive``: the quality-event topic into an :class:`~streams.governance.archive.Archive`.

Thin: a kafka-python consumer assigned every partition of the topic (no consumer group: the
archive's own ``_offsets.json`` says where to resume, so a crash between a file rename and an
offset write re-reads a little, which the archive skips by event id), polling batches and handing
them to :meth:`Archive.ingest`. New partitions of the topic are picked up on the next refresh.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streams.errors import BrokerError
from streams.governance.archive import Archive, IngestResult, RawRecord
from streams.kafka.connection import client_config
from streams.settings import Settings

__all__ = ["ArchiveRun", "run_archiver"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ArchiveRun:
    """Totals of one run of the archiver."""

    batches: int = 0
    archived: int = 0
    duplicates: int = 0
    malformed: int = 0
    expired: int = 0

    def add(self, result: IngestResult) -> None:
        self.batches += 1
        self.archived += result.archived
        self.duplicates += result.duplicates
        self.malformed += result.malformed
        self.expired += result.expired


def _consumer(settings: Settings) -> Any:
    from kafka import KafkaConsumer  # type: ignore[import-untyped,unused-ignore]
    from kafka.errors import KafkaError  # type: ignore[import-untyped,unused-ignore]

    try:
        return KafkaConsumer(
            group_id=None, enable_auto_commit=False, auto_offset_reset="earliest", isolation_level="read_committed",
            client_id=f"{settings.app_id}-archiver", **client_config(settings, "kafka-python"),
        )  # fmt: skip
    except KafkaError as exc:
        raise BrokerError(
            f"Cannot connect the archiver to Kafka at {settings.bootstrap_servers}: {exc}. Is the broker running?"
        ) from exc


def _assign(consumer: Any, archive: Archive, topic: str, assigned: set[int]) -> set[int]:
    """Assign every partition of ``topic`` (new ones included) and seek each new one to the archive's offset."""
    from kafka import TopicPartition

    partitions = consumer.partitions_for_topic(topic) or set()
    if not partitions or partitions <= assigned:
        return assigned
    everything = {int(p) for p in partitions}
    consumer.assign([TopicPartition(topic, p) for p in sorted(everything)])
    fresh = [TopicPartition(topic, p) for p in sorted(everything - assigned)]
    for tp in fresh:
        offset = archive.next_offset(topic, tp.partition)
        if offset is None:
            consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, offset)
    for tp in (TopicPartition(topic, p) for p in sorted(assigned)):  # assign() forgets positions: restore them
        consumer.seek(tp, archive.next_offset(topic, tp.partition) or 0)
    log.info("Archiving %s partitions %s into %s.", topic, sorted(everything), archive.root)
    return everything


def run_archiver(
    archive: Archive,
    settings: Settings,
    *,
    topic: str | None = None,
    max_records: int = 500,
    poll_timeout_s: float = 1.0,
    idle_exit_s: float | None = None,
    stop: threading.Event | None = None,
    on_batch: Callable[[IngestResult], None] | None = None,
) -> ArchiveRun:
    """Consume ``topic`` (default: the settings' events topic) into ``archive`` until ``stop`` is set, or
    until nothing arrived for ``idle_exit_s`` seconds."""
    topic = topic or settings.events_topic
    stop = stop or threading.Event()
    consumer = _consumer(settings)
    run = ArchiveRun()
    assigned: set[int] = set()
    last_data = last_refresh = time.monotonic()
    try:
        while not stop.is_set():
            now = time.monotonic()
            if not assigned or now - last_refresh >= settings.topic_check_interval_s:
                assigned, last_refresh = _assign(consumer, archive, topic, assigned), now
            polled = consumer.poll(timeout_ms=int(poll_timeout_s * 1000), max_records=max_records) if assigned else {}
            if not assigned:
                stop.wait(poll_timeout_s)
            records = [
                RawRecord(r.topic, r.partition, r.offset, r.key, r.value, list(r.headers or ()))
                for batch in polled.values()
                for r in batch
            ]
            if records:
                result = archive.ingest(records)
                run.add(result)
                last_data = time.monotonic()
                if on_batch is not None:
                    on_batch(result)
                log.info(
                    "Archived %d event(s) (%d duplicate, %d malformed, %d expired) into %d file(s).",
                    result.archived, result.duplicates, result.malformed, result.expired, len(result.files),
                )  # fmt: skip
            elif idle_exit_s is not None and time.monotonic() - last_data >= idle_exit_s:
                break
            if archive.retention_days is not None and run.batches % 100 == 99:
                archive.apply_retention()
    finally:
        consumer.close()
    return run
