"""A poll routed as one batch, split back into its partition batches (:meth:`Binding.process_poll`).

The worker decodes and validates one poll of one topic in one call (the decoder's and the engine's fixed
cost per call paid once, the bulk decoder working on the whole poll) but commits per source partition: a
partition's offsets are committed once *its* outputs are acknowledged. :func:`split_result` gives each
partition batch the output records that came from it (in their order), its counts and its last offset; the
first batch also carries what describes the whole poll (its quality events, rule failures and report), so the
events are sent once and every partition of the poll waits for their acknowledgement (the worker shares them).

Under stream time the poll is cut earlier: the stages amend the poll's verdict in one call (:func:`poll_stages`,
each partition batch getting its own state records), :func:`slice_poll` gives each partition batch its share of the
poll's decode, validation and amended verdict, and the batch goes through routing on its own (its own events and
state).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from itertools import compress
from operator import attrgetter

import numpy as np
import polars as pl

from streams.formats.reasons import Decoded
from streams.pipeline.records import BatchResult, Message, OutRecord
from streams.pipeline.stages import PollStage
from streams.validation.report import ValidationReport
from streams.validation.rowlists import RuleLists

__all__ = ["count_parts", "offset_spans", "one_partition", "poll_stages", "slice_poll", "split_result"]

_OUTCOMES = ("valid", "quarantined", "dead_lettered")
_PARTITION, _OFFSET = attrgetter("partition"), attrgetter("offset")


def count_parts(
    counts: dict[int, dict[str, int]], messages: Sequence[Message], msg_of: Sequence[int], valid: Sequence[bool]
) -> None:
    """Add the valid and quarantined records of each source partition (``msg_of``: each row's message)."""
    parts = list(map(_PARTITION, messages))
    of_row = parts if list(msg_of) == list(range(len(parts))) else [parts[i] for i in msg_of]  # one record each
    rows, good = Counter(of_row), Counter(compress(of_row, valid))
    for p, n in rows.items():
        c = counts.setdefault(p, dict.fromkeys(_OUTCOMES, 0))
        c["valid"] += good[p]
        c["quarantined"] += n - good[p]


def _by_partition(records: list[OutRecord], parts: list[int], order: Sequence[int]) -> dict[int, list[OutRecord]]:
    out: dict[int, list[OutRecord]] = {p: [] for p in order}
    for r, p in zip(records, parts, strict=True):  # ValueError on a mismatch: the worker processes per partition
        out[p].append(r)
    return out


def split_result(
    whole: BatchResult,
    batches: Sequence[Sequence[Message]],
    validated: list[int],
    quarantined: list[int],
    dead: list[int],
    counts: dict[int, dict[str, int]],
) -> list[BatchResult]:
    """``whole`` (the poll's result) as one result per batch of ``batches`` (one source partition each).

    ``validated``, ``quarantined``, ``dead``: the source partition of each record of ``whole``'s lists.
    Decode and validation times are shared in proportion to the batches' messages.
    """
    order = [b[0].partition for b in batches]
    vs = _by_partition(whole.validated, validated, order)
    qs = _by_partition(whole.quarantined, quarantined, order)
    ds = _by_partition(whole.dead_lettered, dead, order)
    total = sum(len(b) for b in batches)
    results = []
    for k, (p, batch) in enumerate(zip(order, batches, strict=True)):
        share = len(batch) / total
        results.append(
            BatchResult(
                validated=vs[p], quarantined=qs[p], dead_lettered=ds[p],
                counts=dict(counts.get(p) or dict.fromkeys(_OUTCOMES, 0)),
                last_offsets={p: whole.last_offsets[p]},
                decode_seconds=whole.decode_seconds * share, validate_seconds=whole.validate_seconds * share,
                events=whole.events if k == 0 else [],
                rule_failures=whole.rule_failures if k == 0 else {},
                report=whole.report if k == 0 else None,
                poll_events=k == 0,
            )
        )  # fmt: skip
    return results


def offset_spans(messages: Sequence[Message]) -> dict[int, tuple[int, int]]:
    """``partition -> (lowest, highest offset)`` of a batch (one partition, the worker's case, without a loop)."""
    parts = list(map(_PARTITION, messages))
    offsets = list(map(_OFFSET, messages))
    if parts.count(parts[0]) == len(parts):
        return {parts[0]: (min(offsets), max(offsets))}
    # a poll of several partitions (Binding.process_poll): per partition at C speed, in order of first appearance
    of, at = np.asarray(parts, dtype=np.int64), np.asarray(offsets, dtype=np.int64)
    spans: dict[int, tuple[int, int]] = {}
    for p in dict.fromkeys(parts):
        mine = at[of == p]
        spans[p] = (int(mine.min()), int(mine.max()))
    return spans


def one_partition(messages: Sequence[Message]) -> bool:
    """True when ``messages`` (not empty) all come from one partition."""
    parts = list(map(_PARTITION, messages))
    return parts.count(parts[0]) == len(parts)


def slice_poll(
    decoded: Decoded, report: ValidationReport | None, sizes: Sequence[int]
) -> list[tuple[Decoded, ValidationReport | None]]:
    """The decode and validation of a poll cut into those of its batches (``sizes``: their messages, in order).

    Each batch gets its rows (in the poll's row order, which is its own decode's: JSON and NDJSON records in
    message order, then the Arrow tables), renumbered from 0, with their messages renumbered to the batch:
    the frame, the rows' messages and lines, the formats, dead letters, NDJSON lines, Arrow tables, mismatches
    and the drifted rows (``irregular``); and a report whose per-row parts (``valid_mask``, ``violations``,
    ``gating_violations``, per-row failure cases) are those rows', with their counts. A batch without a decoded
    row gets no report (as its own validation would not run). What describes the batch as a whole is the
    poll's: the report's ``checks``, ``passed`` and summary failure cases; the drift counts (``unknown_fields``,
    ``missing_fields``, ``type_mismatches``) are left empty, as only a per-batch ``schema.drift`` event reads them.
    """
    starts = np.cumsum([0, *sizes])
    batch_of = np.searchsorted(starts, decoded.message.to_numpy(), side="right") - 1  # each row's batch
    order = np.argsort(batch_of, kind="stable")
    bounds = np.searchsorted(batch_of[order], np.arange(len(sizes) + 1))
    rank = np.empty(len(order), dtype=np.int64)  # each row's number in its batch
    rank[order] = np.arange(len(order)) - bounds[batch_of[order]]
    out = []
    for k, (lo, hi) in enumerate(itertools.pairwise(starts.tolist())):
        rows = order[bounds[k] : bounds[k + 1]]
        taken = _rows(decoded.frame, rows)
        irregular = [(int(rank[r]), u, m) for r, u, m in decoded.irregular if batch_of[r] == k]
        mismatches = decoded.mismatches
        if mismatches.height:
            at = mismatches.get_column("row").to_numpy()
            mine = batch_of[at] == k
            mismatches = mismatches.filter(pl.Series(mine)).with_columns(
                pl.Series("row", rank[at[mine]], dtype=pl.UInt32)
            )
        part = Decoded(
            frame=taken,
            message=(_series(decoded.message, rows) - lo).cast(pl.UInt32),
            line=_series(decoded.line, rows),
            formats=decoded.formats[lo:hi],
            dead=[replace(d, message=d.message - lo) for d in decoded.dead if lo <= d.message < hi],
            lines={i - lo: v for i, v in decoded.lines.items() if lo <= i < hi},
            tables={i - lo: v for i, v in decoded.tables.items() if lo <= i < hi},
            mismatches=mismatches,
            irregular=irregular,
        )
        out.append((part, _report_rows(report, rows) if report is not None and len(rows) else None))
    return out


def poll_stages(
    stages: Sequence[PollStage],
    decoded: Decoded,
    report: ValidationReport | None,
    batches: Sequence[Sequence[Message]],
) -> tuple[ValidationReport | None, list[list[OutRecord]]]:
    """The stages' verdict on a poll's rows and each batch's stage records, one call per stage for the whole poll
    (``amend_poll``: what each batch gets alone, the stage's fixed cost paid once); cut the verdict with
    :func:`slice_poll` after."""
    messages = list(itertools.chain.from_iterable(batches))
    rows = decoded.message.to_list()
    dead = sorted({d.message for d in decoded.dead})
    states: list[list[OutRecord]] = [[] for _ in batches]
    for stage in stages:
        report, records = stage.amend_poll(messages, decoded.frame, rows, report, dead, decoded.irregular)
        for k, b in enumerate(batches):
            states[k] += records.get(b[0].partition, [])
    return report, states


def _contiguous(rows: np.ndarray) -> bool:
    return not len(rows) or int(rows[-1]) - int(rows[0]) + 1 == len(rows)


def _rows(frame: pl.DataFrame, rows: np.ndarray) -> pl.DataFrame:
    if _contiguous(rows):  # the common poll: no Arrow message, every batch's rows in one run (no copy)
        return frame.slice(int(rows[0]) if len(rows) else 0, len(rows))
    return frame[rows]


def _series(s: pl.Series, rows: np.ndarray) -> pl.Series:
    return s.slice(int(rows[0]) if len(rows) else 0, len(rows)) if _contiguous(rows) else s.gather(rows)


def _report_rows(report: ValidationReport, rows: np.ndarray) -> ValidationReport:
    """``report`` of the rows ``rows`` (renumbered from 0): their verdicts, violations and failure cases."""
    valid = _series(report.valid_mask, rows)
    lists, gating = report.row_lists()
    violations = lists.cut(rows) if isinstance(lists, RuleLists) else _series(lists, rows)
    if gating is lists:
        gated: pl.Series | RuleLists | None = violations
    else:
        gated = gating.cut(rows) if isinstance(gating, RuleLists) else None if gating is None else _series(gating, rows)
    valid_rows = int(valid.sum())
    return replace(
        report,
        rows=len(rows),
        valid_rows=valid_rows,
        invalid_rows=len(rows) - valid_rows,
        valid_mask=valid,
        violations=violations,  # (the rows' codes when the lists are not gathered yet)
        gating_violations=gated,
        failure_cases=report.cases.cut(rows),  # the cases without a row, then the rows' renumbered (rendered when read)
    )
