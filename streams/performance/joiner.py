"""The labels join, without Kafka: records of the predictions and labels topics in, events and state out.

:class:`PerformanceJoiner` is fed the records of both topics (:meth:`PerformanceJoiner.handle`, in
offset order per partition) and answers with the ``model.performance`` events of the windows that
became final. Its whole state is a set of keyed records for a compacted topic
(:meth:`~PerformanceJoiner.state_records`, :meth:`~PerformanceJoiner.restore`): one per consumed
partition (next offset, and its event-time clock), one per prediction id still open, one per
(window, model version) partial, and the join's finality mark. On Kafka it runs once per partition pair
of co-partitioned topics (:class:`~streams.performance.merge.PairJoiner`, whose final partials a merger
turns into the events); the runner (:mod:`streams.performance.runner`) produces a poll's outputs and the
changed state records in one Kafka transaction, so a crash replays nothing twice.

Semantics (``h`` the horizon, times in epoch ms; ``F`` the join's finality mark, see below):

* a prediction and a label with the same prediction id **match** when their times are at most ``h``
  apart; the pair counts in the window of the prediction time, under its model version, with label
  delay ``max(0, label time - prediction time)``;
* the first prediction and the first label of an id count; later ones are **duplicates**, ignored;
* a prediction still unmatched when ``F > time + h`` is an **unmatched prediction** of its window and
  version; a label still unmatched when ``F > time + h`` is an **orphan label**, counted in the window
  of the label time under model version ``""`` (a label without its prediction has no version);
* a window ``[s, e)`` is **final** when ``F >= e + h``: every prediction and label of it is settled;
  its partials become one event per model version and leave the state. A record whose window is
  final already is **late**: counted in the metrics, ignored; so is a record whose counterpart within the
  horizon was settled alone already (one outcome per record: never an unmatched prediction and an orphan
  label for one id within the horizon); an id is forgotten once every record within ``h`` of it would be late;
* ``F`` is the minimum over every partition of both topics of its watermark (newest event time minus
  the allowed lateness), with the stream-time clocks of :mod:`streams.windows.clock`
  (:func:`~streams.windows.clock.final_through`: idle partitions left out); it never goes back. When
  every partition is idle, every window holding data becomes final.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from streams.events.codec import to_kafka
from streams.events.performance import model_performance
from streams.formats.decoder import MessageDecoder
from streams.performance.binding import JoinSpec, Label, Prediction, Skip, records
from streams.performance.telemetry import JoinCounters
from streams.pipeline.records import Message, OutRecord
from streams.profiles.performance import PerformancePartial, score_units
from streams.profiles.prediction import NO_VERSION, score_bin
from streams.windows.clock import ALL_FINAL, PartitionClock, final_through

__all__ = ["PerformanceJoiner", "performance_event", "window_versions"]

log = logging.getLogger(__name__)

TP = tuple[str, int]


class _Tally:
    """A window's counts for one model version as it fills (a :class:`PerformancePartial` once read)."""

    __slots__ = ("delay", "fn", "fp", "neg", "orphans", "pos", "sums", "tn", "tp", "unmatched")

    def __init__(self, p: PerformancePartial) -> None:
        self.tp, self.fp, self.tn, self.fn = p.tp, p.fp, p.tn, p.fn
        self.pos, self.neg, self.sums = list(p.positives_hist), list(p.negatives_hist), list(p.score_sums)
        self.delay = [p.delay_count, p.delay_sum, p.delay_max]
        self.unmatched, self.orphans = p.unmatched_predictions, p.orphan_labels

    @classmethod
    def empty(cls, bins: int) -> _Tally:
        return cls(PerformancePartial(0, 0, 0, 0, (0,) * bins, (0,) * bins, (0,) * bins))

    def pair(self, score: float, positive: bool, actual: bool, delay_s: float) -> None:
        bins = len(self.sums)
        b = score_bin(score, bins)  # as score_bin_expr: [k / bins, (k + 1) / bins), 1.0 in the last bin
        (self.pos if actual else self.neg)[b] += 1
        self.sums[b] += score_units(score)  # exact: the same sum whatever the order of the pairs
        if positive:
            self.tp += actual
            self.fp += not actual
        else:
            self.tn += not actual
            self.fn += actual
        self.delay = [self.delay[0] + 1, self.delay[1] + delay_s, max(self.delay[2], delay_s)]

    def partial(self) -> PerformancePartial:
        return PerformancePartial(
            self.tp, self.fp, self.tn, self.fn, tuple(self.pos), tuple(self.neg), tuple(self.sums),
            int(self.delay[0]), float(self.delay[1]), float(self.delay[2]), self.unmatched, self.orphans,
        )  # fmt: skip


@dataclass(slots=True)
class _Entry:
    """One prediction id: its prediction and label (as far as seen) and whether each is settled."""

    pred: tuple[int, str, float, bool] | None = None  # time, version, score, positive
    label: tuple[int, bool] | None = None  # time, actual
    pred_done: bool = False
    label_done: bool = False

    def as_json(self) -> list[Any]:
        return [self.pred and list(self.pred), self.label and list(self.label), self.pred_done, self.label_done]

    @classmethod
    def from_json(cls, v: Sequence[Any]) -> _Entry:
        p, lab = v[0], v[1]
        pred = None if p is None else (int(p[0]), str(p[1]), float(p[2]), bool(p[3]))
        return cls(pred, None if lab is None else (int(lab[0]), bool(lab[1])), bool(v[2]), bool(v[3]))


class PerformanceJoiner:
    """See the module docstring. ``now`` is the processing clock (seconds), injectable for tests."""

    def __init__(self, spec: JoinSpec, *, joiner_id: str, events_topic: str,
                 counters: JoinCounters | None = None, now: Callable[[], float] | None = None) -> None:  # fmt: skip
        self.spec, self.joiner_id, self.events_topic = spec, joiner_id, events_topic
        self.counters = counters or JoinCounters()
        self.now = now or time.time
        self.bins = spec.prediction.score_bins
        self.offsets: dict[TP, int] = {}
        self.clocks: dict[TP, PartitionClock] = {}
        self.partitions: dict[str, list[int]] = {spec.predictions_topic: [], spec.labels.topic: []}
        self.final_ms: int | None = None
        self.entries: dict[str, _Entry] = {}
        self.partials: dict[tuple[int, str], _Tally] = {}
        self._expiry: list[tuple[int, str]] = []  # (deadline, pid): settle what is open when F > deadline
        self._prune: list[tuple[int, str]] = []  # (until, pid): forget the id when F >= until
        self._dirty: set[tuple[Any, ...]] = set()
        #: the worker's reading of a predictions message (one JSON object, NDJSON lines, Arrow rows)
        self._decoder = MessageDecoder(spec.contract.schema(spec.schema), max_message_bytes=spec.max_message_bytes,
                                       pause_gc=False)  # fmt: skip

    # -- state ---------------------------------------------------------------------------------

    def _key(self, parts: tuple[Any, ...]) -> bytes:
        return orjson.dumps([self.joiner_id, *parts])

    def restore(self, records: Iterable[Message]) -> None:
        """Continue from the state topic's records (in offset order; later ones win, tombstones delete)."""
        for r in records:
            try:
                owner, kind, *rest = orjson.loads(r.key or b"")
                if owner != self.joiner_id:
                    continue
                value = orjson.loads(r.value) if r.value is not None else None
                self._restore_one(kind, rest, value)
            except (orjson.JSONDecodeError, TypeError, ValueError, KeyError, IndexError):
                log.warning("skipping state record at offset %d: not the joiner's (key %r)", r.offset, r.key)
        self._expiry, self._prune = [], []
        for pid, e in self.entries.items():
            self._schedule(pid, e)
        self._dirty.clear()

    def _restore_one(self, kind: str, rest: list[Any], value: Any) -> None:
        if kind == "offset":
            tp = (str(rest[0]), int(rest[1]))
            self.offsets[tp] = int(value["next"])
            self.clocks[tp] = PartitionClock(value["max_event_ms"], value["last_active_ms"])
        elif kind == "final":
            self.final_ms = None if value is None else int(value)
        elif kind == "entry":
            if value is None:
                self.entries.pop(str(rest[0]), None)
            else:
                self.entries[str(rest[0])] = _Entry.from_json(value)
        elif kind == "partial":
            key = (int(rest[0]), str(rest[1]))
            if value is None:
                self.partials.pop(key, None)
            else:
                self.partials[key] = _Tally(PerformancePartial.from_dict(value))

    def rewind(self, topic: str, partition: int) -> None:
        """Forget the stored offset of an input partition (the topic was recreated or truncated below it): its records
        are all taken from its start. Its clock stays: the mark never goes back, so a record of a window published
        already is late, as any."""
        self.offsets.pop((topic, partition), None)
        self._dirty.add(("offset", topic, partition))

    def state_records(self, topic: str) -> list[OutRecord]:
        """The state records changed since the last call (to produce with the outputs, in one transaction)."""
        out = []
        for parts in sorted(self._dirty, key=repr):
            kind, *rest = parts
            value: Any
            if kind == "offset":
                tp = (rest[0], rest[1])
                clock = self.clocks.get(tp, PartitionClock())
                value = {"next": self.offsets.get(tp, 0), "max_event_ms": clock.max_event_ms,
                         "last_active_ms": clock.last_active_ms}  # fmt: skip
            elif kind == "final":
                value = self.final_ms
            elif kind == "entry":
                e = self.entries.get(rest[0])
                value = None if e is None else e.as_json()
            else:
                p = self.partials.get((rest[0], rest[1]))
                value = None if p is None else p.partial().as_dict()
            out.append(OutRecord(topic, None if value is None else orjson.dumps(value), self._key(parts), partition=0))
        self._dirty.clear()
        return out

    # -- input ---------------------------------------------------------------------------------

    def assign(self, partitions: Mapping[str, Sequence[int]]) -> None:
        """The partitions of both topics (after :meth:`restore`): each holds the join back until it brings
        records or goes idle, idle counted from now (a restart after a downtime finds backlogs, not idle
        partitions)."""
        now = round(self.now() * 1000)
        for topic, parts in partitions.items():
            self.partitions[topic] = sorted(parts)
            for p in parts:
                self.clocks[(topic, p)] = PartitionClock(
                    self.clocks.get((topic, p), PartitionClock()).max_event_ms, now
                )

    def handle(self, msg: Message) -> list[OutRecord]:
        """One consumed message of the predictions or the labels topic (one offset, however many records it holds: a
        restore skips or replays it whole): the events of windows its records made final."""
        tp = (msg.topic, msg.partition)
        if msg.offset < self.offsets.get(tp, 0):
            return []  # consumed before the restart: its effects are in the restored state
        self.offsets[tp] = msg.offset + 1
        self._dirty.add(("offset", *tp))
        if msg.topic not in self.partitions:
            return []
        if msg.partition not in self.partitions[msg.topic]:
            self.partitions[msg.topic] = sorted({*self.partitions[msg.topic], msg.partition})
        out: list[OutRecord] = []
        for record in records(msg, self.spec, self._decoder):  # a message may hold several (NDJSON, Arrow)
            out += self._record(msg, record)
        return out

    def _record(self, msg: Message, record: Prediction | Label | Skip) -> list[OutRecord]:
        """One record of a message, as if it were a message of its own (its offset is the message's)."""
        tp = (msg.topic, msg.partition)
        now = round(self.now() * 1000)
        clock = self.clocks.get(tp, PartitionClock())
        if isinstance(record, Skip):
            self.counters.skip(msg.topic == self.spec.predictions_topic, str(record.reason))
            self.clocks[tp] = PartitionClock(clock.max_event_ms, now)
            return []  # no watermark moved (idle partitions are the business of tick)
        newest = clock.max_event_ms
        if record.time_ms <= now + self.spec.max_skew_ms:  # a skewed record does not advance the watermark
            newest = record.time_ms if newest is None else max(newest, record.time_ms)
        self.clocks[tp] = PartitionClock(newest, now)
        if self._final(record.time_ms):
            self.counters.count("late")
        elif isinstance(record, Prediction):
            self._prediction(record)
        else:
            self._label(record)
        # only a partition's newest event time moves the join's mark (idle partitions: tick, once per poll)
        return self.advance() if newest != clock.max_event_ms else []

    def _start(self, t: int) -> int:
        return t - t % self.spec.window_ms

    def _final(self, t: int) -> bool:
        return (
            self.final_ms is not None and self._start(t) + self.spec.window_ms + self.spec.horizon_ms <= self.final_ms
        )

    def _prediction(self, p: Prediction) -> None:
        e = self.entries.setdefault(p.pid, _Entry())
        if e.pred is not None:
            self.counters.count("duplicate")
            return
        e.pred = (p.time_ms, p.version, p.score, p.positive)
        if e.label is not None and e.label_done and abs(e.label[0] - p.time_ms) <= self.spec.horizon_ms:
            e.pred_done = True  # its label within the horizon is an orphan already: one outcome per record
            self.counters.count("late")
        self._touched(p.pid, e)

    def _label(self, lab: Label) -> None:
        e = self.entries.setdefault(lab.pid, _Entry())
        if e.label is not None:
            self.counters.count("duplicate")
            return
        e.label = (lab.time_ms, lab.actual)
        if e.pred is not None and e.pred_done and abs(e.pred[0] - lab.time_ms) <= self.spec.horizon_ms:
            e.label_done = True  # its prediction within the horizon is unmatched already: one outcome per record
            self.counters.count("late")
        self._touched(lab.pid, e)

    def _touched(self, pid: str, e: _Entry) -> None:
        self._dirty.add(("entry", pid))
        if e.pred and e.label and not e.pred_done and not e.label_done:
            (tp, version, score, positive), (tl, actual) = e.pred, e.label
            if abs(tl - tp) <= self.spec.horizon_ms:
                e.pred_done = e.label_done = True
                delay = max(0, tl - tp) / 1000
                self._tally(self._start(tp), version).pair(score, positive, actual, delay)
                self.counters.count("matched")
        self._schedule(pid, e)

    def _schedule(self, pid: str, e: _Entry) -> None:
        h = self.spec.horizon_ms
        for part, done in ((e.pred, e.pred_done), (e.label, e.label_done)):
            if part is not None and not done:
                heapq.heappush(self._expiry, (part[0] + h, pid))
        heapq.heappush(self._prune, (self._until(e), pid))

    def _until(self, e: _Entry) -> int:
        """The mark from which the id can be forgotten: every record within the horizon of its records is late
        (so that a late counterpart or duplicate finds the id, and is not counted as a new one)."""
        h, w = self.spec.horizon_ms, self.spec.window_ms
        return max(self._start(part[0] + h) + w + h for part in (e.pred, e.label) if part is not None)

    def _tally(self, start: int, version: str) -> _Tally:
        self._dirty.add(("partial", start, version))
        tally = self.partials.get((start, version))
        if tally is None:
            tally = self.partials[(start, version)] = _Tally.empty(self.bins)
        return tally

    # -- time ----------------------------------------------------------------------------------

    def tick(self) -> list[OutRecord]:
        """Advance on processing time alone (idle partitions): call it after every poll, even an empty one."""
        return self.advance()

    def advance(self) -> list[OutRecord]:
        """Move the finality mark; settle what expired; the events of the windows now final."""
        now = round(self.now() * 1000)
        marks = []
        for topic, parts in self.partitions.items():
            clocks = {p: c for (t, p), c in self.clocks.items() if t == topic}
            marks.append(final_through(clocks, parts, now_ms=now, lateness_ms=self.spec.lateness_ms,
                                       idle_ms=self.spec.idle_ms))  # fmt: skip
        if any(m is None for m in marks):
            return []
        mark = min(m for m in marks if m is not None)
        if mark == ALL_FINAL:  # every partition idle: every window holding data is final
            seen = [c.max_event_ms for c in self.clocks.values() if c.max_event_ms is not None]
            if not seen:
                return []
            mark = self._start(max(seen)) + self.spec.window_ms + self.spec.horizon_ms
        if self.final_ms is not None and mark <= self.final_ms:
            return []
        self.final_ms = mark
        self._dirty.add(("final",))
        self._expire()
        out = self._finalize()
        while self._prune and self._prune[0][0] <= mark:
            _, pid = heapq.heappop(self._prune)
            e = self.entries.get(pid)
            if e is not None and self._until(e) <= mark:  # its windows final: settled (expired before)
                del self.entries[pid]
                self._dirty.add(("entry", pid))
        return out

    def _expire(self) -> None:
        assert self.final_ms is not None
        while self._expiry and self._expiry[0][0] < self.final_ms:
            _, pid = heapq.heappop(self._expiry)
            e = self.entries.get(pid)
            if e is None:
                continue
            if e.pred is not None and not e.pred_done and e.pred[0] + self.spec.horizon_ms < self.final_ms:
                e.pred_done = True
                self._tally(self._start(e.pred[0]), e.pred[1]).unmatched += 1
                self._dirty.add(("entry", pid))
            if e.label is not None and not e.label_done and e.label[0] + self.spec.horizon_ms < self.final_ms:
                e.label_done = True
                self._tally(self._start(e.label[0]), NO_VERSION).orphans += 1
                self._dirty.add(("entry", pid))

    def _finalize(self) -> list[OutRecord]:
        finals = []
        for start, version in sorted(k for k in self.partials if self._final(k[0])):
            finals.append((start, version, self.partials.pop((start, version)).partial()))
            self._dirty.add(("partial", start, version))
        return self._emit(finals)

    def _emit(self, finals: list[tuple[int, str, PerformancePartial]]) -> list[OutRecord]:
        """The outputs of the windows now final: one ``model.performance`` event per (window, model version)."""
        versions = window_versions((start, version) for start, version, _ in finals)
        return [performance_event(self.spec, self.events_topic, start, version, partial, self.counters,
                                  versions[start]) for start, version, partial in finals]  # fmt: skip


def window_versions(published: Iterable[tuple[int, str]]) -> dict[int, tuple[str, ...]]:
    """The versions published per window start, sorted: every version of a window is final at once (finality is a
    property of the window), so the events published together name them all (``window_versions``)."""
    out: dict[int, set[str]] = {}
    for start, version in published:
        out.setdefault(start, set()).add(version)
    return {start: tuple(sorted(versions)) for start, versions in out.items()}


def performance_event(spec: JoinSpec, events_topic: str, start: int, version: str, partial: PerformancePartial,
                      counters: JoinCounters, versions: Sequence[str] = ()) -> OutRecord:  # fmt: skip
    """The ``model.performance`` event of a final window and version, as a record (the gauges updated);
    ``versions``: every version published for the window (the event's ``window_versions``)."""
    event = model_performance(spec.contract, spec.schema, spec.predictions_topic, start, start + spec.window_ms,
                              version, partial, labels_topic=spec.labels.topic, horizon_ms=spec.horizon_ms,
                              window_versions=versions)  # fmt: skip
    counters.published(spec, version, partial)
    key, value, headers = to_kafka(event)
    return OutRecord(events_topic, value, key, tuple(headers))
