"""One poll of one topic processed in one call, committed per partition (a mixin of the batch worker).

A poll holds up to ``batch_max_records`` records, usually from several partitions of a topic. The decoder's and
the engine's fixed costs are per call and the bulk decoder gains with the batch size, so the partition batches of
one topic are routed together by :meth:`~streams.pipeline.binding.Binding.process_poll` (one decode, one
validation) and split back: each partition batch still has its own outputs, its own in-flight entry and its own
commit (a partition's offsets are committed once its outputs are acknowledged). The poll's quality events are
sent once, with the first partition's batch; every partition batch of the poll waits for them (they share the
event futures, re-sent alone when they fail, as before).

With stream time (a stage judging windows: partials, uniqueness and clocks are per source partition) the poll
is still decoded and validated once (and goes through the stages in one call, ``amend_poll``), but each
partition batch is routed alone and carries its own events and state records (``BatchResult.poll_events`` is
False): the batches are submitted as if processed one by one. A topic's batches are processed one by one
(``BatchWorker._process``) when one of them is being retried (its attempt count and give-up are per partition
batch), or when the call raises.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from streams.kafka.outputs import OutputLimits
from streams.kafka.transport import TopicPartition, Transport
from streams.pipeline.records import BatchResult, Message, OutRecord
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.pipeline.binding import Binding

__all__ = ["InFlight", "PollBatches", "Prepared"]

log = logging.getLogger("streams.kafka.worker")
R = TypeVar("R")


@dataclass(slots=True)
class InFlight:
    """One processed batch whose outputs await acknowledgement before its offsets can be committed."""

    tp: TopicPartition
    first: int
    next_offset: int
    futures: list[asyncio.Future[Any]]
    polled_at: float
    attempt: int = 0  # failed attempts before this one (kept across poll cycles until the batch commits)
    events: list[OutRecord] = field(default_factory=list)
    event_futures: list[asyncio.Future[Any]] = field(default_factory=list)  # re-sent alone when they fail

    def done(self) -> bool:
        return all(f.done() for f in self.futures) and all(f.done() for f in self.event_futures)

    def error(self) -> BaseException | None:
        """The first failure of the batch's *records* (an event failure is back-pressure, not a re-read)."""
        return next((f.exception() for f in self.futures if not f.cancelled() and f.exception() is not None), None)


#: a processed partition batch: its partition, messages, fitted result, and its poll group (-1: alone)
Prepared = tuple[TopicPartition, Sequence[Message], BatchResult, int]


class PollBatches:
    """Process a poll's partition batches (a topic's in one call when it can) and submit them."""

    settings: Settings
    transport: Transport
    worker_id: str
    bindings: dict[str, Binding]
    outputs: OutputLimits
    _owned: set[TopicPartition]
    _attempts: dict[tuple[TopicPartition, int], tuple[int, BaseException, str]]
    #: partition -> the first offset of a batch read again (``_retry_later`` seeks there): batches of the
    #: partition read before that seek, after that batch, are dropped until the re-read reaches it
    _rewound: dict[TopicPartition, int]

    async def _process(self, tp: TopicPartition, messages: Sequence[Message]) -> BatchResult | None:
        raise NotImplementedError

    async def _submit(self, tp: TopicPartition, messages: Sequence[Message], result: BatchResult, polled_at: float,
                      shared: InFlight | None = None) -> InFlight:  # fmt: skip
        raise NotImplementedError

    async def _reap(self) -> None:
        raise NotImplementedError

    async def _call(self, fn: Callable[..., R], *args: Any, load: Sequence[Sequence[Message]] = (),
                    **kwargs: Any) -> R:  # fmt: skip
        raise NotImplementedError

    async def _prepare(self, batches: Sequence[tuple[TopicPartition, Sequence[Message]]]) -> list[Prepared]:
        """The owned batches of a poll, processed and fitted (a batch retried later is left out)."""
        groups: dict[str, list[tuple[TopicPartition, Sequence[Message]]]] = {}
        for tp, messages in batches:  # a batch read before its partition was rewound is dropped unprocessed
            if tp in self._owned and messages and not self._behind(tp, messages[0].offset):
                groups.setdefault(tp.topic, []).append((tp, messages))
        prepared: list[Prepared] = []
        for g, group in enumerate(groups.values()):
            # in a thread while a transaction commits, batches await acknowledgement, a poll is read ahead, or the
            # poll is heavy
            together = await self._call(self._together, group, load=[ms for _, ms in group]) if self._joint(
                group) else None  # fmt: skip
            fitted = await self._fit_together(group, together) if together is not None else None
            if fitted is None:
                for tp, messages in group:
                    result = await self._process(tp, messages)
                    if result is not None:
                        prepared.append((tp, messages, result, -1))
                continue
            shared = g if fitted[0].poll_events else -1  # else each batch carries its own events (stream time)
            prepared += [(tp, messages, result, shared) for (tp, messages), result in zip(group, fitted, strict=True)]
        return prepared

    async def _fit_together(
        self, group: Sequence[tuple[TopicPartition, Sequence[Message]]], results: list[BatchResult]
    ) -> list[BatchResult] | None:
        """The poll's results fitted to their topics; None when fitting one raises (a bug on some data): the
        batches are then processed one by one, each retried and at last dead-lettered alone (``_process``)."""
        try:
            return [await self.outputs.fit(r, messages) for (_, messages), r in zip(group, results, strict=True)]
        except Exception:
            log.exception("fitting the outputs of a poll of %d partitions of %s failed; processing them one by one",
                          len(group), group[0][0].topic)  # fmt: skip
            return None

    def _joint(self, group: Sequence[tuple[TopicPartition, Sequence[Message]]]) -> bool:
        """True when the batches of ``group`` may be routed in one call: several partitions, one batch each, none
        retried (its attempts and give-up are its own)."""
        if len(group) < 2 or len({tp for tp, _ in group}) < len(group):
            return False
        return not any((tp, messages[0].offset) in self._attempts for tp, messages in group)

    def _together(self, group: Sequence[tuple[TopicPartition, Sequence[Message]]]) -> list[BatchResult] | None:
        """The batches of one topic routed in one call, split per partition; None: process them one by one."""
        binding = self.bindings[group[0][0].topic]
        try:
            results = binding.process_poll([messages for _, messages in group], worker_id=self.worker_id)
        except Exception:
            log.exception("routing a poll of %d partitions of %s together failed; processing them one by one",
                          len(group), binding.topic)  # fmt: skip
            return None
        return results if len(results) == len(group) else None

    def _rewind(self, tp: TopicPartition, offset: int) -> None:
        """Read ``tp`` again from ``offset``: batches of it read before at later offsets (processed, or a poll read
        ahead: :mod:`streams.kafka.ahead`) are dropped until the re-read reaches ``offset`` (``_behind``). From an
        earlier rewind not processed again yet, if any: nothing of the partition from there was processed since."""
        self._rewound[tp] = offset = min(self._rewound.get(tp, offset), offset)
        self.transport.seek(tp, offset)

    def _behind(self, tp: TopicPartition, first: int) -> bool:
        """True for a batch read before its partition was rewound to an earlier, failed batch (``_rewound``): it is
        read again after that one. Submitted now, its offsets would be committed while the failed batch's outputs
        are written nowhere (lost on a rebalance or a crash before the retry). The re-read clears the mark when it
        is processed (``_prepare``), not when it is sent: an exactly-once worker sends polls processed ahead only
        once the last transaction committed, and a batch failing meanwhile must rewind to itself, not to the mark
        of a re-read already processed (sent later: read once more from there, it was written twice)."""
        rewound = self._rewound.get(tp)
        if rewound is None:
            return False
        if first <= rewound:
            del self._rewound[tp]
            return False
        log.info("dropping a batch of %s[%d] from offset %d: the partition is read again from %d", tp.topic,
                 tp.partition, first, rewound)  # fmt: skip
        return True

    async def _submit_poll(self, prepared: Sequence[Prepared], polled_at: float, *, reap: bool) -> None:
        """Submit the prepared batches of a poll; ``reap``: commit what is acknowledged after each."""
        owners: dict[int, InFlight] = {}  # group -> the batch carrying the poll's events
        carried: dict[int, list[OutRecord]] = {}  # group -> the poll's events, when the batch carrying them is dropped
        for tp, messages, result, group in prepared:
            rewound = self._rewound.get(tp)  # since it was processed: read again after it
            if tp not in self._owned or (rewound is not None and messages[0].offset > rewound):
                if group >= 0 and group not in owners:
                    carried.setdefault(group, result.events)
                continue
            if group in carried and group not in owners:
                result = replace(result, events=carried.pop(group))
            batch = await self._submit(tp, messages, result, polled_at, owners.get(group))
            if group >= 0:
                owners.setdefault(group, batch)
            if reap:
                await asyncio.sleep(0)  # let the client send fetch and produce requests meanwhile
                await self._reap()  # commit what is acknowledged already
