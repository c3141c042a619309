"""From one validated batch to window partials: the only place records meet windows.

The worker (or a test) hands over, per record of the batch in poll order, its source
partition and offset, its event time, and what :func:`annotate` found (late, skewed,
the window being filled); for decoded rows also the conformed frame, the engine's
report and the routing verdict, plus the per-row failures of stream uniqueness.
:func:`batch_partials` returns one :class:`~streams.windows.partial.WindowPartial`
per window the batch touches. Nothing here raises on data: a rule that cannot run
on a slice is tallied with its error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from streams.formats.names import field_name
from streams.validation.failures import error_text, sql_metric
from streams.validation.report import ValidationReport
from streams.validation.rowlists import RuleLists
from streams.windows.clock import PartitionClock, observe, window_starts
from streams.windows.hashing import key_hash, key_of
from streams.windows.partial import EVIDENCE, FieldTally, RuleTally, ValueCounts, WindowKey, WindowPartial, cap_unknown
from streams.windows.plan import RuleKind, RulePlan, WindowPlan

__all__ = ["Marks", "annotate", "batch_partials", "eligible", "partition_partials", "with_schema_drift"]


@dataclass(frozen=True, slots=True, eq=False)
class Marks:
    """Per record (poll order): where it came from and how it stands in event time."""

    partitions: np.ndarray  # int64
    offsets: np.ndarray  # int64
    event_ms: np.ndarray  # int64
    late: np.ndarray  # bool
    skewed: np.ndarray  # bool
    current: np.ndarray  # int64: window being filled on its partition (where a late record counts)
    #: bool: no event time (placed by its Kafka timestamp; it does not move the watermark). None: every record has one
    timeless: np.ndarray | None = None

    def take(self, rows: np.ndarray) -> Marks:
        return Marks(
            self.partitions[rows], self.offsets[rows], self.event_ms[rows], self.late[rows], self.skewed[rows],
            self.current[rows], None if self.timeless is None else self.timeless[rows],
        )  # fmt: skip

    def timed(self) -> np.ndarray:
        """Per record: its event time is one the watermark takes (neither skewed nor missing)."""
        return ~self.skewed if self.timeless is None else ~self.skewed & ~self.timeless

    @property
    def size(self) -> int:
        return len(self.offsets)


def annotate(
    clocks: Mapping[int, PartitionClock],
    partitions: np.ndarray,
    offsets: np.ndarray,
    event_ms: np.ndarray,
    *,
    now_ms: int,
    window_ms: int,
    lateness_ms: int,
    max_skew_ms: int,
    timeless: np.ndarray | None = None,
    missing: np.ndarray | None = None,
) -> tuple[Marks, dict[int, PartitionClock]]:
    """Late / skewed / current-window marks of a batch's records, and the partition clocks after it.

    Records of each partition are taken in the order given (offset order). Records where ``timeless`` is True
    have no event time (placed by their Kafka timestamp): they do not advance their partition's watermark.
    Records where ``missing`` is True have no Kafka timestamp either: :func:`observe` places them (``event_ms``).
    """
    parts = np.asarray(partitions, dtype=np.int64)
    ts = np.array(event_ms, dtype=np.int64)
    n = len(ts)
    late, skewed, current = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64)
    out = dict(clocks)
    for p in np.unique(parts):
        rows = np.flatnonzero(parts == p)
        seen = observe(
            out.get(int(p), PartitionClock()),
            ts[rows],
            now_ms=now_ms,
            window_ms=window_ms,
            lateness_ms=lateness_ms,
            max_skew_ms=max_skew_ms,
            timeless=None if timeless is None else np.asarray(timeless, dtype=bool)[rows],
            missing=None if missing is None else np.asarray(missing, dtype=bool)[rows],
        )
        late[rows], skewed[rows], current[rows], ts[rows] = seen.late, seen.skewed, seen.current, seen.event_ms
        out[int(p)] = seen.clock
    still = None if timeless is None else np.asarray(timeless, dtype=bool).copy()
    if missing is not None:
        still = np.asarray(missing, dtype=bool) | (False if still is None else still)
    return Marks(parts, np.asarray(offsets, dtype=np.int64), ts, late, skewed, current, still), out


def eligible(report: ValidationReport, plan: WindowPlan) -> np.ndarray:
    """Per row: nothing but stream uniqueness (or ``duplicateValues``, a window verdict on the stream) made
    it invalid for the engine, so it is accepted unless it is a duplicate on the stream."""
    ok = report.valid_mask.to_numpy().copy()  # valid for the engine: no gating rule failed at all
    invalid = np.flatnonzero(~ok)
    if len(invalid):  # usually few: look at the rules that made them invalid
        ignored = sorted(plan.not_gating_on_stream)
        reasons = report.gating().gather(invalid)
        left = reasons.list.eval(pl.element().filter(~pl.element().is_in(ignored))).list.len()
        ok[invalid] = (left.fill_null(0) == 0).to_numpy()
    return ok


def _ranges(parts: np.ndarray, offs: np.ndarray) -> dict[int, tuple[tuple[int, int], ...]]:
    out: dict[int, tuple[tuple[int, int], ...]] = {}
    for p in np.unique(parts):
        o = offs[parts == p]
        out[int(p)] = ((int(o.min()), int(o.max())),)
    return out


def _evidence(parts: np.ndarray, offs: np.ndarray) -> tuple[tuple[int, int], ...]:
    pairs = sorted(zip(parts.tolist(), offs.tolist(), strict=True))
    return tuple((int(p), int(o)) for p, o in pairs[:EVIDENCE])


def batch_partials(
    plan: WindowPlan,
    window_ms: int,
    marks: Marks,
    *,
    frame: pl.DataFrame | None = None,
    report: ValidationReport | None = None,
    valid: np.ndarray | None = None,
    unique_fails: Mapping[str, np.ndarray] | None = None,
    dead: Marks | None = None,
    skip: np.ndarray | None = None,
    dead_skip: np.ndarray | None = None,
) -> dict[WindowKey, WindowPartial]:
    """One partial per window touched by a batch.

    ``marks``/``frame``/``report``/``valid``/``unique_fails`` describe the decoded rows
    (same length, same order; ``frame`` conformed, needed when :attr:`WindowPlan.needs_frame`);
    ``dead`` the dead-lettered records (their Kafka timestamps as event time). Late
    records count only as ``late``, in the window being filled on their partition.
    Rows where ``skip`` (``dead_skip``) is True were counted before (a replay) and are left out.
    """
    by_partition = partition_partials(
        plan, window_ms, marks, frame=frame, report=report, valid=valid, unique_fails=unique_fails,
        dead=dead, skip=skip, dead_skip=dead_skip, per_partition=False,
    )  # fmt: skip
    return {key: part for (key, _), part in by_partition.items()}


_SKIP = np.iinfo(np.int64).min
_NONE = np.zeros(0, dtype=np.int64)


def _failing_rows(report: ValidationReport) -> dict[str, np.ndarray]:
    """Per rule named in ``violations``, the rows that fail it (ascending).

    Only the failing rows' lists are read (Python work in the number of failing rows, none for a clean batch).
    """
    if not any(c.failures for c in report.checks):  # no rule failed a row (a clean batch, or poll): no list to read
        return {}
    lists = report.row_lists()[0]
    if isinstance(lists, RuleLists) and not lists.gathered:  # from the rows' codes: no list gathered
        return lists.rows_by_name()
    lengths = report.violations.list.len().fill_null(0).to_numpy()
    rows = np.flatnonzero(lengths)
    if not len(rows):
        return {}
    out: dict[str, list[int]] = {}
    for row, names in zip(rows.tolist(), report.violations.gather(rows).to_list(), strict=True):
        for name in names:
            if name is not None:
                out.setdefault(str(name), []).append(row)
    return {name: np.asarray(sorted(set(r)), dtype=np.int64) for name, r in out.items()}


def partition_partials(
    plan: WindowPlan,
    window_ms: int,
    marks: Marks,
    *,
    frame: pl.DataFrame | None = None,
    report: ValidationReport | None = None,
    valid: np.ndarray | None = None,
    unique_fails: Mapping[str, np.ndarray] | None = None,
    dead: Marks | None = None,
    skip: np.ndarray | None = None,
    dead_skip: np.ndarray | None = None,
    per_partition: bool = True,
) -> dict[tuple[WindowKey, int], WindowPartial]:
    """As :func:`batch_partials`, one partial per (window, source partition); with ``per_partition``
    False, one per window (all under partition 0)."""
    rows = report.rows if report is not None else 0
    if marks.size != rows:
        raise ValueError(f"{marks.size} record marks for {rows} validated rows")
    verdict = np.asarray(valid, dtype=bool) if valid is not None else np.ones(rows, dtype=bool)
    fails = dict(unique_fails or {})
    dead = (
        dead if dead is not None else Marks(*(np.zeros(0, dtype=t) for t in (np.int64,) * 3 + (bool, bool, np.int64)))
    )
    c = plan.contract
    own = window_starts(marks.event_ms, window_ms)
    home = np.where(marks.late, marks.current, own)
    dead_home = np.where(dead.late, dead.current, window_starts(dead.event_ms, window_ms))
    if skip is not None:
        home[np.asarray(skip, dtype=bool)] = _SKIP
    if dead_skip is not None:
        dead_home[np.asarray(dead_skip, dtype=bool)] = _SKIP
    row_timed, dead_timed = marks.timed(), dead.timed()  # records whose event time says how fresh the window is
    row_part = marks.partitions if per_partition else np.zeros(rows, dtype=np.int64)
    dead_part = dead.partitions if per_partition else np.zeros(dead.size, dtype=np.int64)
    errors = {k.name: k.error for k in (report.checks if report is not None else ()) if k.error is not None}
    missing = set(report.missing_columns) if report is not None else set()
    failing_rows = _failing_rows(report) if report is not None and rows else {}
    for name, f in fails.items():
        failing_rows[name] = np.flatnonzero(np.asarray(f, dtype=bool))
    out: dict[tuple[WindowKey, int], WindowPartial] = {}
    all_home, all_part = np.concatenate([home, dead_home]), np.concatenate([row_part, dead_part])
    keep = all_home != _SKIP
    # the (window start, partition) slices, sorted; not packed into one int64 (a start after the year 6429, a
    # 9999-12-31 sentinel, overflowed it: the record counted in no window)
    starts, start_of = np.unique(all_home[keep], return_inverse=True)  # the window starts, then packed by rank
    width = int(all_part[keep].max()) + 1 if keep.any() else 1
    codes, inverse = np.unique(np.asarray(start_of, dtype=np.int64).reshape(-1) * width + all_part[keep],
                               return_inverse=True)  # fmt: skip
    slice_of = np.full(len(all_home), -1, dtype=np.int64)
    slice_of[keep] = np.asarray(inverse, dtype=np.int64).reshape(-1)
    slice_of = np.where(marks.late, -1, slice_of[:rows])  # each row's slice: its own window's records only
    slices = _Slices.of(plan, frame, slice_of, len(codes)) if rows else None
    groups = [(int(starts[c // width]), int(c % width)) for c in codes.tolist()]
    # the rules with anything to tally in some slice (the others' tally is empty everywhere: left out of the partial)
    frame_kinds = (RuleKind.VALUES, RuleKind.SQL, RuleKind.SQL_BATCHES)
    active = [
        rp for rp in plan.rules
        if rp.kind in frame_kinds or rp.rule.name in failing_rows or rp.rule.name in errors
        or (rp.rule.op.value == "dtype" and rp.rule.column in missing)
    ]  # fmt: skip
    for g, (start, part) in enumerate(groups):
        so = plan.schema_obj
        key = WindowKey(c.id, c.version, so.name, so.topic, int(start), int(start) + window_ms)
        here, dead_here = (home == start) & (row_part == part), (dead_home == start) & (dead_part == part)
        in_window = here & ~marks.late  # the window's own records
        late_here = here & marks.late
        d_in = dead_here & ~dead.late
        d_late = dead_here & dead.late
        n_rows, n_dead = int(in_window.sum()), int(d_in.sum())
        touched = np.concatenate([marks.partitions[here], dead.partitions[dead_here]])
        offs = np.concatenate([marks.offsets[here], dead.offsets[dead_here]])
        rules: dict[str, RuleTally] = {}
        evidence: dict[str, tuple[tuple[int, int], ...]] = {}
        values: dict[str, ValueCounts] = {}
        aggregates: dict[str, tuple[tuple[str, ...], tuple[int | float | None, ...]]] = {}
        idx = np.flatnonzero(in_window)
        for rp in active:
            name = rp.rule.name
            error = errors.get(name) if rp.kind is RuleKind.ROWS else None  # the others are judged here
            if rp.rule.op.value == "dtype" and rp.rule.column in missing and n_rows:
                error = error or f"column {rp.rule.column!r} is missing from the batch"
            failing = _NONE
            if rp.kind in (RuleKind.ROWS, RuleKind.STREAM) and name in failing_rows:
                candidates = failing_rows[name]
                failing = candidates[in_window[candidates]]
            tally = RuleTally(len(failing), 0, error if n_rows else None)
            if n_rows and error is None and rp.kind in frame_kinds:
                assert slices is not None
                tally = slices.tally(rp, g, idx, values, aggregates, tally)
            if tally != RuleTally():
                rules[name] = tally
            if len(failing):
                evidence[name] = _evidence(marks.partitions[failing], marks.offsets[failing])
            elif rp.kind is RuleKind.VALUES and name in values:
                assert slices is not None
                evidence.update(slices.duplicate_evidence(name, idx, marks))
        out[(key, int(part))] = WindowPartial(
            key,
            c.sha256,
            records=n_rows + n_dead,
            rows=n_rows,
            valid=int((verdict & in_window).sum()),
            quarantined=int((~verdict & in_window).sum()),
            dead_lettered=n_dead,
            late=int(late_here.sum() + d_late.sum()),
            skewed=int((marks.skewed & in_window).sum() + (dead.skewed & d_in).sum()),
            rules=dict(sorted(rules.items())),
            values=dict(sorted(values.items())),
            aggregates=dict(sorted(aggregates.items())),
            evidence=dict(sorted(evidence.items())),
            offsets=_ranges(touched, offs),
            newest_event_ms=_newest(marks.event_ms[in_window & row_timed], dead.event_ms[d_in & dead_timed]),
        )
    return out


def _newest(*event_ms: np.ndarray) -> int | None:
    """The newest of some records' event times (None for no record)."""
    both = np.concatenate(event_ms)
    return int(both.max()) if len(both) else None


@dataclass(slots=True)
class _Slices:
    """What the frame-reading rules need for every (window, partition) slice of a batch, computed once per
    batch: the key hashes of ``duplicateValues`` rules and the partial aggregates of mergeable SQL rules (one
    grouped query per rule instead of one query per slice). Errors are kept per rule, as a slice would raise."""

    plan: WindowPlan
    frame: pl.DataFrame | None  # the columns the rules read
    hashes: dict[str, tuple[np.ndarray, np.ndarray] | str]  # rule -> (hashes, nulls) or why it cannot run
    sql: dict[str, dict[int, tuple[int | float | None, ...]] | str]  # rule -> slice -> partial values, or error

    @classmethod
    def of(cls, plan: WindowPlan, frame: pl.DataFrame | None, slice_of: np.ndarray, groups: int) -> _Slices:
        """``slice_of``: per row, the index of its (window, partition) slice, -1 for a late or replayed row."""
        if frame is None or not plan.needs_frame or not groups:
            return cls(plan, None, {}, {})
        sub = frame.select(plan.frame_columns(frame.columns))
        hashes: dict[str, tuple[np.ndarray, np.ndarray] | str] = {}
        sql: dict[str, dict[int, tuple[int | float | None, ...]] | str] = {}
        for rp in plan.of_kind(RuleKind.VALUES, RuleKind.SQL):
            name = rp.rule.name
            try:
                if rp.kind is RuleKind.VALUES:
                    columns = key_of(rp.rule)
                    absent = [c for c in columns if c not in sub.columns]
                    if absent or not columns:
                        hashes[name] = f"column {absent[0] if absent else None!r} is not in the batch"
                    else:
                        hashes[name] = key_hash(sub, columns)
                else:
                    assert rp.sql is not None
                    sql[name] = rp.sql.partials(sub, plan.schema_obj.name, slice_of)
            except Exception as exc:  # a rule that cannot run on this batch is tallied on each slice, never raised
                (hashes if rp.kind is RuleKind.VALUES else sql)[name] = error_text(exc)
        return cls(plan, sub, hashes, sql)

    def tally(
        self,
        rp: RulePlan,
        g: int,
        idx: np.ndarray,
        values: dict[str, ValueCounts],
        aggregates: dict[str, tuple[tuple[str, ...], tuple[int | float | None, ...]]],
        tally: RuleTally,
    ) -> RuleTally:
        """Tally a rule that reads the slice's rows (``idx``: its rows in the batch): duplicate counts or SQL."""
        if self.frame is None:
            return RuleTally(0, 0, "the conformed rows were not provided, so this rule cannot be judged")
        name = rp.rule.name
        if rp.kind is RuleKind.VALUES:
            hashed = self.hashes[name]
            if isinstance(hashed, str):
                return RuleTally(0, 0, hashed)
            values[name] = ValueCounts.of(hashed[0][idx], hashed[1][idx])
            return tally
        if rp.kind is RuleKind.SQL:
            assert rp.sql is not None
            partials = self.sql[name]
            if isinstance(partials, str):
                return RuleTally(0, 0, partials)
            aggregates[name] = (rp.sql.kinds, partials[g])
            return tally
        try:  # not mergeable: judged on the slice itself
            metric = sql_metric(str(rp.rule.args[0]), self.frame[idx].lazy(), self.plan.schema_obj.name)
            return RuleTally(int(not rp.rule.threshold.allows(metric)), 1, None)
        except Exception as exc:
            return RuleTally(0, 1, error_text(exc))

    def duplicate_evidence(self, name: str, idx: np.ndarray, marks: Marks) -> dict[str, tuple[tuple[int, int], ...]]:
        """The first records of the slice whose (non-null) value repeats within the slice (evidence only)."""
        hashed = self.hashes.get(name)
        if hashed is None or isinstance(hashed, str) or not len(idx):
            return {}
        h, nulls = hashed[0][idx], hashed[1][idx]
        _, inverse, counts = np.unique(h, return_inverse=True, return_counts=True)
        dup = (counts[inverse] > 1) & ~nulls
        if not dup.any():
            return {}
        rows = idx[dup]
        return {name: _evidence(marks.partitions[rows], marks.offsets[rows])}


def with_schema_drift(
    partials: dict[tuple[WindowKey, int], WindowPartial],
    marks: Marks,
    skip: np.ndarray,
    irregular: Sequence[tuple[int, tuple[str, ...], tuple[str, ...]]],
    window_ms: int,
) -> dict[tuple[WindowKey, int], WindowPartial]:
    """Each partial with the undeclared and missing fields of its rows (the rows it counts)."""
    own = ~marks.late & ~np.asarray(skip, dtype=bool)
    starts = window_starts(marks.event_ms, window_ms)
    slots: dict[tuple[int, int], tuple[dict[str, FieldTally], dict[str, FieldTally]]] = {}
    for row, unknown, missing in irregular:
        if not own[row]:
            continue
        p, first = int(marks.partitions[row]), ((int(marks.partitions[row]), int(marks.offsets[row])),)
        found = slots.setdefault((int(starts[row]), p), ({}, {}))
        # undeclared names are the producers' keys, of any length: cut as the events show them (names cut alike add
        # up, a record counted once), so that a window's state record stays within its topic's limit; missing names
        # are declared ones
        for names, into in ((dict.fromkeys(map(field_name, unknown)), found[0]), (missing, found[1])):
            for name in names:
                into[name] = into[name] + FieldTally(1, first) if name in into else FieldTally(1, first)
    out = {}
    for (key, p), part in partials.items():
        tallies = slots.get((key.start_ms, p))
        if tallies is not None:
            part = replace(
                part, unknown=cap_unknown(dict(sorted(tallies[0].items()))), missing=dict(sorted(tallies[1].items()))
            )
        out[(key, p)] = part
    return out
