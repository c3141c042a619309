"""Back-pressure when the events topic refuses writes: pause consumption and re-send only the events.

A batch's quality events are sent after its records. When the events topic refuses them
(deleted with auto-creation off, an ACL, a policy, a full disk), re-reading the batch would
send its records again on every retry (the red team counted 3,100 duplicate outputs from 100
inputs in 15 s). Instead :class:`EventDelivery` keeps the batch uncommitted, **pauses every
owned partition** (nothing new is read while events cannot be written), and re-sends only the
failed events with backoff (``retry_backoff_ms`` doubled, at most 30 s) until they land; then
consumption resumes. Records are never sent twice for an event failure, and no event is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from streams.kafka.connection import backoff
from streams.kafka.outputs import failed
from streams.kafka.transport import TopicPartition, Transport
from streams.pipeline.records import OutRecord
from streams.settings import Settings

__all__ = ["EventDelivery"]

log = logging.getLogger("streams.kafka.worker")


class EventDelivery:
    """Sends a batch's events; when some fail, pauses consumption and re-sends them until they land."""

    def __init__(self, settings: Settings, transport: Transport) -> None:
        self.settings, self.transport = settings, transport
        self.paused: set[TopicPartition] = set()
        self.failures = 0
        self._retry_at = 0.0

    @property
    def blocked(self) -> bool:
        """True while consumption is paused because events cannot be written."""
        return bool(self.paused) or self.failures > 0

    async def send(self, events: Sequence[OutRecord]) -> list[asyncio.Future[Any]]:
        return [await self._send(e) for e in events]

    async def _send(self, event: OutRecord) -> asyncio.Future[Any]:
        """``transport.send``, a refusal it raises (aiokafka's ``send`` raises when it cannot get the topic's
        metadata: ``TopicAuthorizationFailedError``, ``KafkaTimeoutError`` for a deleted topic) as a failed future:
        re-sent like any other failed event, never a dead worker."""
        try:
            return await self.transport.send(event)
        except Exception as exc:
            return failed(exc)

    async def settle(
        self, events: Sequence[OutRecord], futures: list[asyncio.Future[Any]], owned: set[TopicPartition]
    ) -> bool:
        """True when every event of a batch (all ``futures`` done) was delivered; else re-send later, paused."""
        failed = [i for i, f in enumerate(futures) if not f.cancelled() and f.exception() is not None]
        if not failed:
            if self.blocked:
                self._resume(owned)
            return True
        now = time.monotonic()
        if self.failures == 0:
            error = futures[failed[0]].exception()
            log.error("the events topic %s refuses writes (%r): consumption paused, %d events re-sent with backoff; "
                      "records are not sent again", self.settings.events_topic, error, len(failed))  # fmt: skip
            self.failures, self._retry_at = 1, now + backoff(self.settings, 1)
        for tp in owned - self.paused:
            self.transport.pause(tp)
            self.paused.add(tp)
        if now < self._retry_at:
            return False
        self.failures += 1
        self._retry_at = now + backoff(self.settings, self.failures)
        for i in failed:
            futures[i] = await self._send(events[i])
        return False

    def _resume(self, owned: set[TopicPartition]) -> None:
        log.warning("the events topic %s accepts writes again after %d attempts: consumption resumed",
                    self.settings.events_topic, self.failures)  # fmt: skip
        for tp in self.paused & owned:
            self.transport.resume(tp)
        self.paused.clear()
        self.failures = 0
