"""A poll routed as one batch, split back into its partition batches (:meth:`Binding.process_poll`).

The worker decodes and validates one poll of one topic in one call (the decoder's and the engine's fixed
cost per call paid once, the bulk decoder working on the whole poll) but commits per source partition: a
partition's offsets are committed once *its* outputs are acknowledged. :func:`split_result` gives each
partition batch the output records that came from it (in their order), its counts and its last offset; the
first batch also carries what describes the whole poll (its quality events, rule failures and report), so the
events are sent once and every partition of the poll waits for their acknowledgement (the worker shares them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import compress

from streams.pipeline.records import BatchResult, Message, OutRecord

__all__ = ["count_parts", "offset_spans", "one_partition", "split_result"]

_OUTCOMES = ("valid", "quarantined", "dead_lettered")


def count_parts(
    counts: dict[int, dict[str, int]], messages: Sequence[Message], msg_of: Sequence[int], valid: Sequence[bool]
) -> None:
    """Add the valid and quarantined records of each source partition (``msg_of``: each row's message)."""
    parts = [m.partition for m in messages]
    of_row = [parts[i] for i in msg_of]
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
            )
        )  # fmt: skip
    return results


def offset_spans(messages: Sequence[Message]) -> dict[int, tuple[int, int]]:
    """``partition -> (lowest, highest offset)`` of a batch (one partition, the worker's case, without a loop)."""
    parts = [m.partition for m in messages]
    offsets = [m.offset for m in messages]
    if parts.count(parts[0]) == len(parts):
        return {parts[0]: (min(offsets), max(offsets))}
    spans: dict[int, tuple[int, int]] = {}
    for p, o in zip(parts, offsets, strict=True):
        lo, hi = spans.get(p, (o, o))
        spans[p] = (min(lo, o), max(hi, o))
    return spans


def one_partition(messages: Sequence[Message]) -> bool:
    """True when ``messages`` (not empty) all come from one partition."""
    parts = [m.partition for m in messages]
    return parts.count(parts[0]) == len(parts)
