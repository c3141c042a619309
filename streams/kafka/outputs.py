"""Outputs that fit their topics: per-topic size limits read from the broker (cached), and the last resort.

:class:`OutputLimits` asks the transport for each output topic's ``max.message.bytes`` (the broker's
describe-configs answer, capped by the producer's request size), keeps it for
``LIMIT_TTL_S`` seconds (or until the broker refuses a record as too large, then asks again), and
hands a batch's outputs to the pure :func:`streams.pipeline.fitting.fit`. :func:`given_up` is what a
batch becomes after the configured retries: ``internal.<Exception>`` copies when *processing* kept
failing, reference records (no value bytes, so they fit) when the broker kept *refusing* its outputs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from operator import attrgetter

from streams.kafka.transport import Transport
from streams.pipeline.deadletter import internal_dead_letters
from streams.pipeline.fitting import fit, references
from streams.pipeline.headers import HeaderNames, bounded
from streams.pipeline.records import BatchResult, Message
from streams.settings import Settings

__all__ = ["LIMIT_TTL_S", "OutputLimits", "given_up"]

log = logging.getLogger(__name__)

#: how long a topic's limit is trusted before it is read again
LIMIT_TTL_S = 60.0
_TOPIC = attrgetter("topic")


class OutputLimits:
    """Per-topic record size limits, cached; fits each batch's outputs to them."""

    def __init__(self, settings: Settings, transport: Transport) -> None:
        self.settings, self.transport = settings, transport
        self._limits: dict[str, tuple[int, float]] = {}

    async def limit(self, topic: str) -> int:
        cached = self._limits.get(topic)
        now = time.monotonic()
        if cached is not None and now - cached[1] < LIMIT_TTL_S:
            return cached[0]
        value = await self.transport.max_message_bytes(topic)
        self._limits[topic] = (value, now)
        return value

    async def fit(self, result: BatchResult, messages: Sequence[Message]) -> BatchResult:
        outputs = result.outputs()
        if not outputs or not messages:
            return result
        topics = set(map(_TOPIC, outputs))
        limits = {t: await self.limit(t) for t in topics}
        return fit(result, messages, limits, settings=self.settings)

    def refused(self, error: BaseException) -> None:
        """A produce failed with ``error``: when it says "too large", read the limits again."""
        if "TooLarge" in type(error).__name__:
            self._limits.clear()


def given_up(
    contract_ref: str, messages: Sequence[Message], error: BaseException, settings: Settings, *, worker_id: str,
    refused: bool,
) -> BatchResult:  # fmt: skip
    """A batch after its retries: copies to the DLQ, or references when the broker kept refusing its outputs."""
    if not refused:
        return internal_dead_letters(contract_ref, messages, error, settings, worker_id=worker_id)
    name = type(error).__name__
    text = (
        f"The outputs of this record's batch were refused by the broker ({name}) on every retry; "
        "the record stays in its source topic at the partition and offset given."
    )
    names = HeaderNames(settings.header_prefix)
    signed = names.provenance(str(settings.mode), worker_id)
    contract = ((names.errors_contract, bounded(contract_ref)),)
    return references(messages, settings=settings, reason=f"refused.{name}", text=text, extra=contract + signed)
