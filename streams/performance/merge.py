"""The join spread over processes: one joiner per partition pair, and one merger of their window partials.

The predictions and labels topics are **co-partitioned** (both keyed by prediction id, the same
partition count, the same default partitioner), so every record of an id is in partition ``p`` of
both: **pair** ``p``. A :class:`PairJoiner` is the :class:`~streams.performance.joiner.PerformanceJoiner`
of one pair (its state keys named ``<joiner_id>/p<p>``): it settles its ids with its own finality
mark ``F_p`` (the minimum watermark of its two partitions) and, instead of events, writes for the
merge topic (compacted, one partition; keys ``[joiner_id, kind, ...]``):

* ``share`` ``(window start, model version, pair)``: the pair's partial of a window once it is final
  for the pair (``F_p >= end + h``), written once;
* ``mark`` ``(pair)``: ``F_p`` and whether both partitions of the pair are idle, when either changes
  (after the shares of the same poll, in the same transaction).

The :class:`PerformanceMerger` (run by the owner of pair 0) reads them all, and a window is final
over the whole stream when every pair's mark is at or past ``end + h``, idle pairs left out (every
window an idle pair holds data in is final for it), a pair never reported holding everything back
(:func:`final_through`'s rule, on marks). It then publishes one ``model.performance`` event per
(window, model version) — the exact merge of the pairs' shares — with the ``closed`` marker and
tombstones for the shares, in one transaction: a merger restored from the compacted topic does
not publish a window twice. A share of a window already published (a pair that was idle, then
brought records of an old window) is counted as ``late`` and dropped.

With no record later than the allowed lateness, the events are those of one
:class:`~streams.performance.joiner.PerformanceJoiner` over every partition.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.performance.binding import JoinSpec
from streams.performance.joiner import PerformanceJoiner, performance_event, window_versions
from streams.performance.telemetry import JoinCounters
from streams.pipeline.records import Message, OutRecord
from streams.profiles.performance import PerformancePartial

__all__ = ["PairJoiner", "PerformanceMerger", "pair_owner"]

log = logging.getLogger(__name__)

_NEVER = -(2**62)


def pair_owner(joiner_id: str, pair: int) -> str:
    """The state-key owner of one pair's joiner."""
    return f"{joiner_id}/p{pair}"


class PairJoiner(PerformanceJoiner):
    """The join of partition pair ``pair``: shares and marks for ``merge_topic`` instead of events."""

    def __init__(self, spec: JoinSpec, *, joiner_id: str, pair: int, merge_topic: str,
                 counters: JoinCounters | None = None, now: Callable[[], float] | None = None) -> None:  # fmt: skip
        super().__init__(spec, joiner_id=pair_owner(joiner_id, pair), events_topic=merge_topic, counters=counters,
                         now=now)  # fmt: skip
        self.group, self.pair, self.merge_topic = joiner_id, pair, merge_topic
        self._reported: tuple[int | None, bool] | None = None

    def assign_pair(self) -> None:
        """Own partition ``pair`` of both topics (after :meth:`restore`)."""
        self.assign({self.spec.predictions_topic: [self.pair], self.spec.labels.topic: [self.pair]})

    def _emit(self, finals: list[tuple[int, str, PerformancePartial]]) -> list[OutRecord]:
        return [OutRecord(self.merge_topic, orjson.dumps(p.as_dict()),
                          orjson.dumps([self.group, "share", start, version, self.pair]), partition=0)
                for start, version, p in finals]  # fmt: skip

    def tick(self) -> list[OutRecord]:
        """:meth:`PerformanceJoiner.tick`, then the pair's mark if it changed (call after every poll)."""
        out = super().tick()
        now = round(self.now() * 1000)
        tps = [(t, self.pair) for t in (self.spec.predictions_topic, self.spec.labels.topic)]
        idle = all(tp in self.clocks and self.clocks[tp].idle(now, self.spec.idle_ms) for tp in tps)
        mark = (self.final_ms, idle)
        if mark != self._reported:
            self._reported = mark
            value = {"final_ms": self.final_ms, "idle": idle}
            out.append(OutRecord(self.merge_topic, orjson.dumps(value), orjson.dumps([self.group, "mark", self.pair]),
                                 partition=0))  # fmt: skip
        return out


@dataclass(slots=True)
class PerformanceMerger:
    """The windows of the whole stream, from the pairs' shares and marks (see the module docstring)."""

    spec: JoinSpec
    joiner_id: str
    pairs: int
    events_topic: str
    merge_topic: str
    counters: JoinCounters = field(default_factory=JoinCounters)
    marks: dict[int, tuple[int | None, bool]] = field(default_factory=dict)
    shares: dict[tuple[int, str, int], PerformancePartial] = field(default_factory=dict)
    closed_through: int = _NEVER  # end of the newest window published
    after_close: int = 0  # shares dropped: their window was published already
    dropped: list[tuple[int, str, int]] = field(default_factory=list)  # their keys, to tombstone

    def feed(self, records: Iterable[Message]) -> None:
        """Records of the merge topic, in offset order (later ones win, tombstones delete)."""
        for r in records:
            try:
                owner, kind, *rest = orjson.loads(r.key or b"")
                if owner != self.joiner_id:
                    continue
                value: Any = orjson.loads(r.value) if r.value is not None else None
                self._feed_one(kind, rest, value)
            except (orjson.JSONDecodeError, TypeError, ValueError, KeyError, IndexError):
                log.warning("skipping merge record at offset %d: unreadable (key %r)", r.offset, r.key)

    def _feed_one(self, kind: str, rest: list[Any], value: Any) -> None:
        if kind == "mark" and value is not None:
            self.marks[int(rest[0])] = (None if value["final_ms"] is None else int(value["final_ms"]),
                                        bool(value["idle"]))  # fmt: skip
        elif kind == "closed" and value is not None:
            self.closed_through = max(self.closed_through, int(value))
        elif kind == "share":
            key = (int(rest[0]), str(rest[1]), int(rest[2]))
            if value is None:
                self.shares.pop(key, None)
            elif key[0] + self.spec.window_ms <= self.closed_through:
                self.after_close += 1
                self.dropped.append(key)
                partial = PerformancePartial.from_dict(value)
                for _ in range(partial.count + partial.unmatched_predictions + partial.orphan_labels):
                    self.counters.count("late")
                log.warning("performance merger: pair %d's share of window %d (%s) arrived after the window was "
                            "published (the pair was idle); counted late", key[2], key[0], key[1])  # fmt: skip
            else:
                self.shares[key] = PerformancePartial.from_dict(value)

    def through(self) -> int | None:
        """The stream's finality mark: windows ``[s, e)`` with ``e + h <= through`` are final (None: none)."""
        marks = []
        for p in range(self.pairs):
            if p not in self.marks:
                return None  # a pair never reported: it may hold anything
            final_ms, idle = self.marks[p]
            if idle:
                continue
            if final_ms is None:
                return None
            marks.append(final_ms)
        return min(marks) if marks else None if not self.shares else max(self._ends()) + self.spec.horizon_ms

    def _ends(self) -> list[int]:
        return [start + self.spec.window_ms for start, _, _ in self.shares]

    def due(self) -> list[OutRecord]:
        """The events of the windows final now, then the ``closed`` marker and the shares' tombstones."""
        out = [self._tombstone(key) for key in self.dropped]
        self.dropped = []
        through = self.through()
        if through is None:
            return out
        ready = sorted({(s, v) for s, v, _ in self.shares if s + self.spec.window_ms + self.spec.horizon_ms <= through})
        if not ready:
            return out
        versions = window_versions(ready)
        for start, version in ready:
            parts = [self.shares[k] for k in sorted(k for k in self.shares if k[:2] == (start, version))]
            merged = parts[0]
            for part in parts[1:]:
                merged = merged.merge(part)
            out.append(
                performance_event(self.spec, self.events_topic, start, version, merged, self.counters, versions[start])
            )
        self.closed_through = max(self.closed_through, *(s + self.spec.window_ms for s, _ in ready))
        out.append(OutRecord(self.merge_topic, orjson.dumps(self.closed_through),
                             orjson.dumps([self.joiner_id, "closed"]), partition=0))  # fmt: skip
        for key in sorted(k for k in self.shares if k[:2] in set(ready)):
            del self.shares[key]
            out.append(self._tombstone(key))
        return out

    def _tombstone(self, key: tuple[int, str, int]) -> OutRecord:
        return OutRecord(self.merge_topic, None, orjson.dumps([self.joiner_id, "share", *key]), partition=0)
