"""Outputs that fit their topics: per-topic size limits read from the broker (cached), and the last resort.

:class:`OutputLimits` asks the transport for each output topic's ``max.message.bytes`` (the broker's
describe-configs answer, capped by the producer's request size), keeps it for
``LIMIT_TTL_S`` seconds (or until the broker refuses a record as too large, then asks again), and
hands a batch's outputs to the pure :func:`streams.pipeline.fitting.fit`. The worker reads every output topic's
limit once at start (:meth:`OutputLimits.prefetch`); a limit older than ``LIMIT_TTL_S`` is read again in the
background while batches go on with the one known (a read is an admin round trip, 50-200 ms: awaited in the hot
path it was a latency spike per topic every minute); a refusal still clears every limit and the next batch
waits for fresh ones. :func:`given_up` is what a
batch becomes after the configured retries: ``internal.<Exception>`` copies when *processing* kept
failing, reference records (no value bytes, so they fit) when the broker kept *refusing* its outputs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

from streams.kafka.transport import Transport
from streams.pipeline.deadletter import internal_dead_letters
from streams.pipeline.fitting import fit, references
from streams.pipeline.headers import HeaderNames, bounded
from streams.pipeline.records import BatchResult, Message
from streams.settings import Settings

__all__ = ["LIMIT_TTL_S", "OutputLimits", "failed", "given_up"]

log = logging.getLogger(__name__)

#: how long a topic's limit is trusted before it is read again
LIMIT_TTL_S = 60.0
_TOPIC = attrgetter("topic")


class OutputLimits:
    """Per-topic record size limits, cached; fits each batch's outputs to them."""

    def __init__(
        self, settings: Settings, transport: Transport, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings, self.transport, self.clock = settings, transport, clock
        self._limits: dict[str, tuple[int, float]] = {}
        self._reading: dict[str, asyncio.Task[None]] = {}  # background reads of limits past their age

    async def limit(self, topic: str) -> int:
        """``topic``'s limit: the one known (read again in the background once older than ``LIMIT_TTL_S``), else
        read now."""
        cached = self._limits.get(topic)
        if cached is None:
            await self._read(topic)
            return self._limits[topic][0]
        if self.clock() - cached[1] >= LIMIT_TTL_S and topic not in self._reading:
            task = asyncio.ensure_future(self._refresh(topic))
            self._reading[topic] = task
            task.add_done_callback(lambda t: self._reading.pop(topic, None) if self._reading.get(topic) is t else None)
        return cached[0]

    async def _refresh(self, topic: str) -> None:
        try:
            await self._read(topic)
        except Exception as exc:  # the transport falls back to the last value itself; a bug must not go unseen
            log.warning("could not read max.message.bytes of %s again, keeping %d: %r", topic,
                        self._limits.get(topic, (0, 0.0))[0], exc)  # fmt: skip

    async def _read(self, topic: str) -> None:
        now = self.clock()
        self._limits[topic] = (await self.transport.max_message_bytes(topic), now)

    async def prefetch(self, topics: Sequence[str]) -> None:
        """Read the limits of ``topics`` at once (the worker's output topics, at start): no batch waits for them."""
        await asyncio.gather(*(self._read(t) for t in dict.fromkeys(topics) if t not in self._limits))

    async def fit(self, result: BatchResult, messages: Sequence[Message]) -> BatchResult:
        outputs = result.outputs()
        if not outputs or not messages:
            return result
        topics = set(map(_TOPIC, outputs))
        limits = {t: await self.limit(t) for t in topics}
        return fit(result, messages, limits, settings=self.settings)

    async def fit_given_up(self, result: BatchResult, messages: Sequence[Message]) -> BatchResult:
        """:meth:`fit` for a batch's last resort (:func:`given_up`), which must go out: when fitting raises, the
        outputs go as they are (copies too large for their topic are refused by the broker, and the batch then ends
        as reference records, which carry no value bytes)."""
        try:
            return await self.fit(result, messages)
        except Exception:
            log.exception("fitting the dead letters of a batch of %s failed; they are sent as they are",
                          messages[0].topic if messages else "?")  # fmt: skip
            return result

    def refused(self, error: BaseException) -> None:
        """A produce failed with ``error``: when it says "too large", read the limits again."""
        if "TooLarge" in type(error).__name__:
            self._limits.clear()
            for task in self._reading.values():  # a read started before the refusal must not put its value back
                task.cancel()
            self._reading.clear()


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


def failed(error: BaseException) -> asyncio.Future[Any]:
    """A future failed with ``error``: an output (or event) the transport refused before it reached the producer
    (it raised), handled as the producer's refusal would be: retried, re-sent, or given up."""
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(error)
    return future
