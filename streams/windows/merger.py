"""Merging and finalizing one stream's windows from the internal topic: pure state, no Kafka.

The worker that owns the internal-topic partition of a stream (contract id, schema
object, source topic) feeds every record of it to a :class:`WindowMerger`:
partial snapshots per (window, contract text, source partition), heartbeats per source partition,
the stream's ``closed`` marker, and the texts of the contract versions its workers run.
Partials of every contract version are merged, each version's apart (a window's key holds the version): after
an upgrade, or during a rolling one, a window has a verdict per version that counted records of it, each judged
by that version (:attr:`WindowMerger.contracts`). :meth:`WindowMerger.due` returns the windows that
became final (every partition's watermark past their end, or the partition idle),
each the merge of the latest snapshot of every partition; the caller finalizes and
publishes their summaries, then publishes :meth:`WindowMerger.close` (the ``closed``
marker, plus tombstones for the snapshots it no longer needs) so that a new owner,
reading the compacted topic from the start, does not publish them again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from streams.windows.clock import ALL_FINAL, PartitionClock, final_through
from streams.windows.codec import Closed, ContractText, Heartbeat, Partial, Record, record_key
from streams.windows.partial import WindowKey, WindowPartial, covers, merge, merge_all, overlaps

__all__ = ["CLOSED_MEMORY", "MergerStats", "WindowMerger", "window_texts"]

#: (window, partition) snapshots of published windows remembered to count records that arrive after them
CLOSED_MEMORY = 4096
#: a window's partial of one source partition counted by one contract text: (window, sha256, partition)
Slot = tuple[WindowKey, str, int]


@dataclass(slots=True)
class MergerStats:
    """Records the merger could not use (each is logged and skipped by the caller)."""

    stale: int = 0  # a snapshot older than one already held (a replay)
    overlapping: int = 0  # a snapshot neither older nor newer than the one held (kept the larger)
    after_close: int = 0  # a snapshot of a window already finalized (records arrived after an idle close)
    late_after_close: int = 0  # records those snapshots added: counted as late in the next window published


@dataclass(slots=True)
class WindowMerger:
    """The windows of one stream (see the module docstring)."""

    contract_id: str
    schema: str
    topic: str
    lateness_ms: int
    idle_ms: int
    partitions: int = 0
    clocks: dict[int, PartitionClock] = field(default_factory=dict)
    #: per (window, contract sha256, partition): the latest snapshot (two texts of one version are two partials)
    snapshots: dict[Slot, WindowPartial] = field(default_factory=dict)
    closed_through: int = -(2**62)
    stats: MergerStats = field(default_factory=MergerStats)
    #: records of each (window, partition) snapshot already published, for the windows published by this merger
    #: (bounded: the latest CLOSED_MEMORY): a later snapshot of one of them adds late records, not lost ones
    published: dict[Slot, WindowPartial] = field(default_factory=dict)
    pending_late: int = 0
    #: windows published beyond every partition's newest event time (only skewed records reach them; an idle
    #: close publishes them): closed without moving ``closed_through`` (bounded like ``published``)
    beyond: dict[WindowKey, None] = field(default_factory=dict)
    #: per published (window, partition): the memory before a fresh partial of it, and that partial's latest
    #: snapshot (see :meth:`_after_close`; bounded like ``published``)
    chains: dict[Slot, tuple[WindowPartial | None, WindowPartial]] = field(default_factory=dict)
    #: ``closed_through`` before this merger's first close: the windows it closed end after it (None: none yet)
    closed_from: int | None = None
    #: (version, sha256) -> the text of each contract version a worker of the stream wrote when it started
    contracts: dict[tuple[str, str], ContractText] = field(default_factory=dict)

    def feed(self, record: Record) -> None:
        """Take one record of the internal topic (of this stream)."""
        if isinstance(record, Heartbeat):
            self.partitions = max(self.partitions, record.partitions)
            old = self.clocks.get(record.partition)
            self.clocks[record.partition] = record.clock if old is None else old.merge(record.clock)
        elif isinstance(record, Closed):
            self.closed_through = max(self.closed_through, record.through_ms)
            self.snapshots = {k: v for k, v in self.snapshots.items() if k[0].end_ms > self.closed_through}
        elif isinstance(record, ContractText):
            self.contracts[(record.version, record.sha256)] = record
        else:
            self._snapshot(record)

    def _snapshot(self, record: Partial) -> None:
        part = record.partial
        if part.key.end_ms <= self.closed_through or part.key in self.beyond:
            self.stats.after_close += 1
            self._after_close((part.key, part.contract_sha256, record.partition), part)
            return
        slot = (part.key, part.contract_sha256, record.partition)
        held = self.snapshots.get(slot)
        if held is None or covers(part, held):
            self.snapshots[slot] = part  # the cumulative partial grew
        elif covers(held, part):
            self.stats.stale += 1  # a replay of an older one
        elif not overlaps(held, part):
            self.snapshots[slot] = merge(held, part)  # another owner's records of the partition (a rebalance)
        else:
            self.stats.overlapping += 1  # records counted by two owners: keep the larger, never count twice
            if part.records > held.records:
                self.snapshots[slot] = part

    def _after_close(self, slot: Slot, part: WindowPartial) -> None:
        """A snapshot of a published window: the records it adds are late (counted in the next window published).
        Unknown after a restart of the merger (the published snapshots are tombstoned): then not counted.

        The owner of a partition drops a published window's partial (on the merger's worker) and starts a fresh
        one with the next records, which then grows cumulatively: ``chains`` keeps, per slot, what the memory
        held before that fresh partial and its latest snapshot, so a grown snapshot adds what it grew by (it
        overlapped the memory, the published records and the chain merged, and added nothing)."""
        held = self.published.get(slot)
        base, chain = self.chains.get(slot, (held, None))
        if held is None and not any(s[0] == slot[0] for s in self.published) and not self._closed_here(slot[0]):
            return  # unknown (published before a restart)
        if held is not None and covers(held, part):
            return  # a replay of what was published or counted since
        if chain is not None and covers(part, chain) and (base is None or not overlaps(base, part)):
            added, chain = _total(part) - _total(chain), part  # the fresh partial grew
        elif chain is None and base is not None and covers(part, base):
            added, base = _total(part) - _total(base), part  # the cumulative partial of a worker that kept it
        elif held is None or not overlaps(held, part):  # a fresh partial (or this partition's first records)
            added, base, chain = _total(part), held, part
        else:  # overlapping (records counted again after a crash): what it holds beyond, at best; it grows on
            added = max(_total(part) - _total(chain if chain is not None else base), 0)  # type: ignore[arg-type]
            if chain is None or covers(part, chain):  # the memory keeps every offset seen (for replays)
                base, chain = held, part
        union = [p for p in (base, chain) if p is not None]
        self.published[slot] = union[0] if len(union) == 1 else merge(union[0], union[1])
        if chain is not None:
            self.chains[slot] = (base, chain)
            _bound(self.chains)
        self.pending_late += added
        self.stats.late_after_close += added

    def _closed_here(self, key: WindowKey) -> bool:
        """``key`` was closed by this merger without a record (no partition had one when it closed it): the
        records reaching it now are late. (Its ``closed`` marker alone cannot tell such a window from one published
        before a restart of the merger, whose later snapshots may only repeat what that summary counted.)"""
        return self.closed_from is not None and self.closed_from < key.end_ms <= self.closed_through

    def due(self, now_ms: int) -> list[WindowPartial]:
        """The windows that are final now and not yet published, merged over partitions, oldest first."""
        if not self.partitions:
            return []
        through = final_through(
            self.clocks, range(self.partitions), now_ms=now_ms, lateness_ms=self.lateness_ms, idle_ms=self.idle_ms
        )
        if through is None:
            return []
        ready: dict[tuple[WindowKey, str], list[WindowPartial]] = {}  # per window and contract text
        for (key, sha, _), part in sorted(self.snapshots.items(), key=lambda item: item[0]):
            if key.end_ms <= through or through == ALL_FINAL:
                ready.setdefault((key, sha), []).append(part)
        out = sorted((p for p in (merge_all(parts) for parts in ready.values()) if p is not None),
                     key=lambda p: (p.key.start_ms, p.key, p.contract_sha256))  # fmt: skip
        if out and self.pending_late:  # records that arrived after their window was published: late, here
            out[-1] = replace(out[-1], late=out[-1].late + self.pending_late)
        return out

    def close(self, windows: Iterable[WindowPartial]) -> tuple[Closed, list[bytes]]:
        """Mark ``windows`` published: the ``closed`` marker to publish and the snapshot keys to tombstone."""
        windows = list(windows)
        # a window no partition's clock has reached holds only skewed records: publishing it (an idle close) must
        # not close every window before it, or nothing the stream brings until then is ever published
        newest = max((c.max_event_ms for c in self.clocks.values() if c.max_event_ms is not None), default=None)
        far = {w.key for w in windows if newest is None or w.key.start_ms > newest}
        ends = [w.key.end_ms for w in windows if w.key not in far]
        through = max([*ends, self.closed_through])
        self.beyond.update(dict.fromkeys(far))
        _bound(self.beyond)
        gone = [s for s in self.snapshots if s[0].end_ms <= through or s[0] in far]
        keys = [record_key(Partial(s[2], self.snapshots[s])) for s in gone]
        for slot in gone:
            self.published[slot] = self.snapshots.pop(slot)
        if self.closed_from is None:
            self.closed_from = self.closed_through
        while len(self.published) > CLOSED_MEMORY:  # forgotten: what reaches them now is not known to be new
            oldest = next(iter(self.published))
            del self.published[oldest]
            self.closed_from = max(self.closed_from, oldest[0].end_ms)
        if windows:
            self.pending_late = 0
        self.closed_through = through
        return Closed(self.contract_id, self.schema, self.topic, through), keys


def window_texts(due: Iterable[WindowPartial]) -> dict[tuple[int, int], tuple[tuple[str, str], ...]]:
    """Per window ``(start_ms, end_ms)`` of ``due`` (the windows :meth:`WindowMerger.due` returned together), every
    contract text ``(version, sha256)`` a verdict of it is published for, sorted: a window's partials of every text
    are final at once (finality is its end's), so these are all the summaries the window gets."""
    texts: dict[tuple[int, int], set[tuple[str, str]]] = {}
    for p in due:
        texts.setdefault((p.key.start_ms, p.key.end_ms), set()).add((p.key.contract_version, p.contract_sha256))
    return {window: tuple(sorted(found)) for window, found in texts.items()}


def _total(p: WindowPartial) -> int:
    return p.records + p.late


def _bound(memory: dict[Any, Any]) -> None:
    """Forget the oldest entries beyond :data:`CLOSED_MEMORY` (dicts keep insertion order)."""
    while len(memory) > CLOSED_MEMORY:
        del memory[next(iter(memory))]
