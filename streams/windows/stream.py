"""Stream time of one binding (schema object on its topic) on one worker: pure state, no Kafka.

:class:`StreamTime` keeps, per source partition it consumes, the partition's clock,
the open window partials (cumulative, one per window) and the uniqueness state, and
turns each validated batch into

* the verdict of stream uniqueness and event time per row (which rows fail
  ``field_uniqueness``, which have no usable event time), for routing;
* the records to publish on the internal topic (:mod:`.codec`): the snapshot of each
  window partial the batch changed and a heartbeat per partition;
* the uniqueness changelog records (new claims, tombstones of expired buckets).

Publish both, flush, then commit offsets: after a crash, :meth:`StreamTime.assign`
restores a partition from them, and replayed records at or below the heartbeat's
``counted_through`` are routed again but not counted again.

The worker processes a batch in a thread while the event loop commits the batches before it, and the observer
(heartbeats, expiry, merging, assignments) runs on the loop: :attr:`StreamTime.lock` keeps them apart. A batch's
``process`` holds it (the stage takes it), and so does every state access of the observer
(:mod:`streams.windows.observer`), so none sees a batch half accounted (a clock ahead of ``counted_through``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from streams.profiles.profile import Profile
from streams.profiles.slices import SliceProfiler
from streams.validation.report import ValidationReport
from streams.windows.batch import Marks, annotate, eligible, partition_partials, with_schema_drift
from streams.windows.clock import NO_TIME, PartitionClock, event_times, newest_through, window_starts
from streams.windows.codec import Heartbeat, Partial
from streams.windows.hashing import key_hash, key_of
from streams.windows.partial import WindowKey, WindowPartial, absorb
from streams.windows.plan import WindowPlan
from streams.windows.route import EVENT_TIME_RULE
from streams.windows.unique import Chunk, UniqueChanges, UniqueState

__all__ = ["EVENT_TIME_RULE", "BatchTime", "PartitionState", "StreamConfig", "StreamTime"]


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """Durations (ms) of one binding: the contract's ``qstreams.*`` values or the settings' defaults."""

    window_ms: int = 60_000
    lateness_ms: int = 10_000
    idle_ms: int = 30_000
    max_skew_ms: int = 300_000
    unique_ms: int = 86_400_000


#: closed window partials kept per partition to publish again after a replay (see :class:`PartitionState`)
CLOSED_KEPT = 64


@dataclass(slots=True)
class PartitionState:
    """What one worker knows about one source partition of the binding."""

    clock: PartitionClock
    open: dict[WindowKey, WindowPartial] = field(default_factory=dict)
    unique: dict[str, UniqueState] = field(default_factory=dict)  # column -> state
    counted_through: int = -1
    #: partials of the windows that closed on this partition lately, with the offset counted when they closed
    #: (the last :data:`CLOSED_KEPT`): a batch read again from before that offset publishes them again
    closed: dict[WindowKey, tuple[int, WindowPartial]] = field(default_factory=dict)
    #: the highest offset whose batch's outputs are known to be written (its offsets were committed, or it was
    #: restored from the topics): until ``counted_through`` is settled too, the clock and ``counted_through`` run
    #: ahead of what the internal topic holds, and no heartbeat of the tick may carry them (see :meth:`StreamTime.
    #: heartbeats`)
    settled_through: int = -1
    #: restored partials of open windows counted by another contract version or text (before an upgrade, or by a
    #: worker still on the other one), per (window, sha256): what they cover is not counted again
    #: (:meth:`StreamTime._covered`); the merger publishes them as that version's
    others: dict[tuple[WindowKey, str], WindowPartial] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, eq=False)
class BatchTime:
    """The stream-time outcome of one batch (rows in the batch's order)."""

    unique_fails: dict[str, np.ndarray]  # stream-unique rule name -> bool per row
    bad_time: np.ndarray  # bool per row: no usable event time (quarantined for EVENT_TIME_RULE)
    valid: np.ndarray  # bool per row: the routing verdict (eligible, unique, with an event time)
    marks: Marks
    records: tuple[Partial | Heartbeat, ...]  # to publish on the internal topic
    changes: dict[tuple[str, int], UniqueChanges]  # (column, partition) -> uniqueness changelog
    replayed: int  # rows not counted again (at or below the partition's counted offset)


class StreamTime:
    """Stream time of one binding on one worker (see the module docstring)."""

    def __init__(
        self,
        plan: WindowPlan,
        config: StreamConfig,
        partitions: int,
        profile: Callable[[pl.DataFrame], Profile] | None = None,
    ) -> None:
        self.plan = plan
        self.profile = profile  # profiles each window slice's rows (drift monitoring), when given
        self.config = config
        self.partitions = partitions  # of the source topic
        self.states: dict[int, PartitionState] = {}
        self._keys = {rp.rule.name: key_of(rp.rule) for rp in plan.stream_unique}
        self.unique_columns = tuple(sorted({"+".join(k) for k in self._keys.values()}))  # one state per key
        #: held while a batch is processed (in the worker's thread) and while the observer reads or changes the
        #: partitions' state (on the event loop): see the module docstring
        self.lock = threading.Lock()

    # --- assignment
    def assign(
        self,
        partition: int,
        now_ms: int,
        *,
        heartbeat: Heartbeat | None = None,
        partials: Iterable[WindowPartial] = (),
        chunks: Mapping[str, list[Chunk]] | None = None,
        others: Iterable[WindowPartial] = (),
    ) -> None:
        """Start (or resume) a source partition from what the internal and changelog topics hold for it
        (``others``: its partials of other contract versions, for what they cover; the heartbeat has no version:
        ``counted_through`` is the partition's, whichever version counted the records)."""
        clock = PartitionClock(None, now_ms)
        counted = -1
        if heartbeat is not None:
            clock = PartitionClock(heartbeat.clock.max_event_ms, now_ms)
            counted = heartbeat.counted_through
        state = PartitionState(clock)
        # records beyond the heartbeat's ``counted_through`` that a restored partial covers were counted (the worker
        # died while writing a batch's outputs: some of its partials reached the topic, its heartbeat did not); they
        # are observed again, to rebuild the clock as it was, and not counted again (:meth:`_covered`). Raising
        # ``counted_through`` to the partials' offsets skipped the batch's records in the partials that did not
        # reach the topic: counted in no window. A heartbeat of a worker that did not write ``counted_through``
        # (-1 with a clock) falls back to the partials' offsets.
        legacy = heartbeat is not None and heartbeat.counted_through < 0 and heartbeat.clock.max_event_ms is not None
        for p in partials:
            state.open[p.key] = p
        state.others = {(p.key, p.contract_sha256): p for p in others}
        for p in [*state.open.values(), *state.others.values()]:
            if legacy:
                ranges = p.offsets.get(partition, ())
                counted = max(counted, max((last for _, last in ranges), default=-1))
        state.counted_through = state.settled_through = counted
        for column in self.unique_columns:
            restored = (chunks or {}).get(column, [])
            state.unique[column] = UniqueState.restore(self.config.unique_ms, restored)
        self.states[partition] = state

    def revoke(self, partition: int) -> None:
        self.states.pop(partition, None)

    # --- batches
    def process(
        self,
        report: ValidationReport,
        conformed: pl.DataFrame,
        partitions: np.ndarray,
        offsets: np.ndarray,
        kafka_ms: np.ndarray,
        *,
        now_ms: int,
        dead: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        irregular: Sequence[tuple[int, tuple[str, ...], tuple[str, ...]]] = (),
    ) -> BatchTime:
        """Judge one validated batch on stream time and account it in its windows.

        ``partitions``/``offsets``/``kafka_ms`` per decoded row (the rows of ``report``);
        ``dead``: ``(partitions, offsets, kafka_ms)`` of the batch's dead-lettered records;
        ``irregular``: ``(row, undeclared fields, missing fields)`` of the rows that drifted from the schema.
        """
        cfg, plan = self.config, self.plan
        parts = np.asarray(partitions, dtype=np.int64)
        offs = np.asarray(offsets, dtype=np.int64)
        kafka = np.asarray(kafka_ms, dtype=np.int64)
        times = event_times(conformed, plan.stream.event_time, kafka)
        empty = np.zeros(0, dtype=np.int64)
        d_parts, d_offs, d_ts = (np.asarray(a, dtype=np.int64) for a in (dead or (empty, empty, empty)))
        for p in np.unique(np.concatenate([parts, d_parts])):
            if int(p) not in self.states:
                self.assign(int(p), now_ms)
        # rows and dead letters of a partition are observed together, in offset order
        all_parts, all_offs = np.concatenate([parts, d_parts]), np.concatenate([offs, d_offs])
        all_ts = np.concatenate([times.ms, d_ts])
        # with an event-time field, a record without one (and a dead letter) is placed by its Kafka timestamp,
        # another clock: it must not move the watermark (one such record made every later one late on a lagging
        # stream)
        # and one without any time (no Kafka timestamp: -1) is placed in the window being filled on its partition
        missing = np.concatenate([times.bad & (kafka < 0), d_ts < 0])
        timeless = np.concatenate([times.bad, np.full(len(d_ts), plan.stream.event_time is not None)]) | missing
        skip_all = self._counted(all_parts, all_offs)
        order = np.lexsort((all_offs, all_parts))
        order = order[~skip_all[order]]
        observed, clocks = annotate(
            {p: st.clock for p, st in self.states.items()}, all_parts[order], all_offs[order], all_ts[order],
            now_ms=now_ms, window_ms=cfg.window_ms, lateness_ms=cfg.lateness_ms, max_skew_ms=cfg.max_skew_ms,
            timeless=timeless[order], missing=missing[order],
        )  # fmt: skip
        everything = _spread(observed, order, all_parts, all_offs, all_ts, timeless)
        skip_all |= self._covered(everything)
        n = len(parts)
        marks, dead_marks = everything.take(np.arange(n)), everything.take(np.arange(n, len(all_parts)))
        skip, dead_skip = skip_all[:n], skip_all[n:]
        ok = eligible(report, plan) & ~times.bad
        # each row's partition clock once it is taken: the claims older than the horizon before it have expired
        clock_now = newest_through(
            {p: st.clock for p, st in self.states.items()}, all_parts, all_ts, np.zeros(len(all_parts), dtype=bool)
        )  # a record counted before (read again): its partition's clock now
        clock_now[order] = newest_through(
            {p: st.clock for p, st in self.states.items()}, observed.partitions, observed.event_ms, observed.timed()
        )
        fails, valid = self._uniqueness(conformed, parts, offs, marks.event_ms, ok, clock_now[:n], replayed=skip)
        partials = partition_partials(
            plan, cfg.window_ms, marks, frame=conformed, report=report, valid=valid, unique_fails=fails,
            dead=dead_marks, skip=skip, dead_skip=dead_skip,
        )  # fmt: skip
        if self.profile is not None:
            partials = self._profiled(partials, conformed, marks, skip)
        if irregular:
            partials = with_schema_drift(partials, marks, skip, irregular, cfg.window_ms)
        records: list[Partial | Heartbeat] = []
        for (key, p), part in partials.items():
            state = self.states[p]
            merged, why = absorb(state.open.get(key), part)
            if why is None:
                state.open[key] = merged
                records.append(Partial(p, merged))
        # a batch read again (its outputs were lost: an aborted transaction, a failed produce): the open partials
        # of its partitions, and those that closed since the first offset read again, are published again, so
        # the merger sees what they hold (a no-op if it already did)
        again: dict[tuple[WindowKey, int], WindowPartial] = {}
        for p in np.unique(all_parts[skip_all]).tolist():
            state, first = self.states[p], int(all_offs[skip_all & (all_parts == p)].min())
            again |= {(key, p): part for key, (at, part) in state.closed.items() if at >= first}
            again |= {(key, p): part for key, part in state.open.items()}
        for key, p in sorted(set(again) - set(partials), key=lambda kp: (kp[1], kp[0])):
            records.append(Partial(p, again[(key, p)]))
        touched = set(parts.tolist()) | set(dead_marks.partitions.tolist())
        for p in sorted(touched):
            state = self.states[p]
            state.clock = clocks.get(p, state.clock)
            seen = np.concatenate([offs[parts == p], dead_marks.offsets[dead_marks.partitions == p]])
            state.counted_through = max(state.counted_through, int(seen.max()))
            mark = state.clock.watermark(cfg.lateness_ms)
            if mark is not None:  # windows closed on this partition: their last snapshot is published
                for k in [k for k in state.open if k.end_ms <= mark]:
                    state.closed[k] = (state.counted_through, state.open.pop(k))
                while len(state.closed) > CLOSED_KEPT:
                    del state.closed[next(iter(state.closed))]
        records += self.heartbeats(now_ms, sorted(touched))
        return BatchTime(fails, times.bad, valid, marks, tuple(records), self.take_changes(), int(skip.sum()))

    def heartbeats(self, now_ms: int, partitions: Iterable[int] | None = None) -> list[Heartbeat]:
        """A heartbeat per (given) partition, with its clock as this worker has it now.

        A batch's own heartbeat (in :meth:`process`'s records) is written after the batch's partials, in the
        same partition of the internal topic. Called without ``partitions`` (the observer's periodic tick, sent
        on its own), only the partitions whose processed batches are all settled (:meth:`settle`) get one: a tick
        heartbeat sent while a batch's outputs are still on their way carried a clock (and ``counted_through``)
        ahead of the partials the topic holds. The merger then could finalize a window without that batch's
        partials, and a new owner restoring from it (the worker killed before the outputs were written) skipped
        the batch's records as already counted: they were never counted at all.
        """
        c, so = self.plan.contract, self.plan.schema_obj
        if partitions is None:
            chosen = [p for p, st in self.states.items() if st.counted_through <= st.settled_through]
        else:
            chosen = [p for p in partitions if p in self.states]
        return [
            Heartbeat(c.id, so.name, so.topic, p, self.partitions, self.states[p].clock, now_ms,
                      self.states[p].counted_through)
            for p in sorted(chosen)
        ]  # fmt: skip

    def settle(self, partition: int, next_offset: int) -> None:
        """The outputs of the partition's batches below ``next_offset`` are written (their offsets committed)."""
        state = self.states.get(partition)
        if state is not None:
            state.settled_through = max(state.settled_through, next_offset - 1)

    def close_through(self, partition: int, through_ms: int) -> None:
        """Forget open partials of windows ending at or before ``through_ms`` (finalized by the merger)."""
        state = self.states.get(partition)
        if state is not None:
            state.open = {k: v for k, v in state.open.items() if k.end_ms > through_ms}
            state.others = {k: v for k, v in state.others.items() if k[0].end_ms > through_ms}

    def take_changes(self) -> dict[tuple[str, int], UniqueChanges]:
        """The uniqueness changes not yet taken (a batch's claims, the tick's expiry tombstones), per column and
        partition; taking them clears them."""
        out = {}
        for p, state in self.states.items():
            for column, u in state.unique.items():
                changes = u.take_changes()
                if changes.chunks or changes.tombstones:
                    out[(column, p)] = changes
        return out

    def expire(self) -> int:
        """Drop uniqueness buckets older than the horizon before each partition's newest event time (call
        periodically); the claims dropped. That time is the partition clock's, which skewed records do not
        advance: the newest claim's, which they do, let one record a day ahead of the wall clock expire every
        claim of its partition, and the next duplicate of any of them passed."""
        return sum(
            u.expire(state.clock.max_event_ms)
            for state in self.states.values()
            if state.clock.max_event_ms is not None
            for u in state.unique.values()
        )

    # --- helpers
    def _profiled(
        self,
        partials: dict[tuple[WindowKey, int], WindowPartial],
        conformed: pl.DataFrame,
        marks: Marks,
        skip: np.ndarray,
    ) -> dict[tuple[WindowKey, int], WindowPartial]:
        """Each partial with the profile of its rows: the same rows :func:`partition_partials` counts in it.

        A :class:`SliceProfiler` profiles every slice of the batch in one pass; any other callable, slice by slice.
        """
        assert self.profile is not None
        own = ~marks.late & ~np.asarray(skip, dtype=bool)
        starts = window_starts(marks.event_ms, self.config.window_ms)
        profiled = [kp for kp, part in partials.items() if part.rows]
        ids = np.full(len(own), -1, dtype=np.int64)
        for i, (key, p) in enumerate(profiled):
            ids[own & (starts == key.start_ms) & (marks.partitions == p)] = i
        if isinstance(self.profile, SliceProfiler):
            profiles = self.profile.slices(conformed, ids, len(profiled))
        else:
            profiles = [self.profile(conformed[np.flatnonzero(ids == i)]) for i in range(len(profiled))]
        out = dict(partials)
        for kp, profile in zip(profiled, profiles, strict=True):
            out[kp] = replace(partials[kp], profile=profile)
        return out

    def _covered(self, marks: Marks) -> np.ndarray:
        """Per record beyond its partition's ``counted_through``: the partial of the window it counts in (its own,
        or the one being filled when it is late) already covers its offset (restored from a batch whose heartbeat
        was lost: see :meth:`assign`). False everywhere on the usual path, where no partial goes beyond."""
        out = np.zeros(marks.size, dtype=bool)
        for p in np.unique(marks.partitions).tolist():
            state = self.states[p]
            held = [part for _, part in state.closed.values()] + [*state.open.values(), *state.others.values()]
            ahead: dict[int, list[tuple[int, int]]] = {}  # window start -> ranges (of every contract version)
            for part in held:
                if any(last > state.counted_through for _, last in part.offsets.get(p, ())):
                    ahead.setdefault(part.key.start_ms, []).extend(part.offsets[p])
            if not ahead:
                continue
            rows = np.flatnonzero(marks.partitions == p)
            home = window_starts(np.where(marks.late[rows], marks.current[rows], marks.event_ms[rows]),
                                 self.config.window_ms)  # fmt: skip
            for i, start, off in zip(rows.tolist(), home.tolist(), marks.offsets[rows].tolist(), strict=True):
                ranges = ahead.get(start, ())
                out[i] = off > state.counted_through and any(first <= off <= last for first, last in ranges)
        return out

    def _counted(self, parts: np.ndarray, offs: np.ndarray) -> np.ndarray:
        through = np.full(len(offs), -1, dtype=np.int64)
        for p in np.unique(parts):
            through[parts == p] = self.states[int(p)].counted_through
        return offs <= through

    def _uniqueness(
        self,
        conformed: pl.DataFrame,
        parts: np.ndarray,
        offs: np.ndarray,
        event_ms: np.ndarray,
        ok: np.ndarray,
        clock_now: np.ndarray,
        replayed: np.ndarray | None = None,
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Per stream-unique rule, the rows failing it; and the routing verdict (``ok`` and unique), whose
        rows claim their values. ``replayed`` rows (read again) write their own claims to the changelog again.

        Claims expire against ``clock_now`` (each row's partition clock once it is taken, :data:`NO_TIME` for
        none): the rows of a partition are judged in runs over which no bucket expires, each after the buckets
        expired by its clock are dropped. Expiring only at the observer's tick (every 30 s of wall clock) let a
        claim live as long as the event time that passed meanwhile: a backfill, or a horizon of seconds."""
        fails = {rp.rule.name: np.zeros(len(offs), dtype=bool) for rp in self.plan.stream_unique}
        hashed = {
            "+".join(k): key_hash(conformed, k)
            for k in self._keys.values()
            if k and all(c in conformed.columns for c in k)
        }
        accepted = np.asarray(ok, dtype=bool).copy()
        if not hashed:
            return fails, accepted
        for p in np.unique(parts).tolist():
            rows_p = np.flatnonzero(parts == p)
            rows_p = rows_p[np.argsort(offs[rows_p], kind="stable")]
            states = self.states[p].unique
            bucket_ms, now = next(iter(states.values())).bucket_ms, clock_now[rows_p]
            step = np.where(now > NO_TIME, (now - self.config.unique_ms) // bucket_ms, NO_TIME)
            for rows in np.split(rows_p, np.flatnonzero(np.diff(step)) + 1):
                for u in states.values() if clock_now[rows[0]] > NO_TIME else ():
                    u.expire(int(clock_now[rows[0]]))
                # a claim already past the horizon at its clock (a late record's) would expire at once: not made
                fresh = (event_ms[rows] // bucket_ms + 1) * bucket_ms + self.config.unique_ms > clock_now[rows]
                seen: dict[str, np.ndarray] = {}
                for rp in self.plan.stream_unique:
                    column = "+".join(self._keys[rp.rule.name])
                    if column in hashed:
                        h, nulls = hashed[column]
                        seen[column] = np.zeros(len(rows), dtype=bool)
                        fails[rp.rule.name][rows] = states[column].judge(
                            h[rows], nulls[rows], offs[rows], ok[rows] & fresh, seen=seen[column]
                        )
                mask = accepted[rows] & ~np.logical_or.reduce([f[rows] for f in fails.values()], initial=False)
                accepted[rows], taken = mask, rows[mask]
                for column, (h, nulls) in hashed.items():
                    states[column].claim(h[taken], nulls[taken] | ~fresh[mask], offs[taken], event_ms[taken],
                                         seen=seen[column][mask])  # fmt: skip
                    if replayed is not None:
                        again = taken[np.asarray(replayed, dtype=bool)[taken] & ~nulls[taken]]
                        states[column].reclaim(h[again], offs[again], event_ms[again])
        return fails, accepted


def _spread(
    fresh: Marks, rows: np.ndarray, parts: np.ndarray, offs: np.ndarray, ts: np.ndarray, timeless: np.ndarray
) -> Marks:
    """Marks for every record from the marks of the records at positions ``rows`` (others: not late, not skewed)."""
    n = len(parts)
    late, skewed, current = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), np.asarray(ts, dtype=np.int64).copy()
    placed = current.copy()
    late[rows], skewed[rows], current[rows], placed[rows] = fresh.late, fresh.skewed, fresh.current, fresh.event_ms
    return Marks(parts, offs, placed, late, skewed, current, np.asarray(timeless, dtype=bool))
