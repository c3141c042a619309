"""Batches that fill on slow feeds: ``STREAMS_BATCH_MAX_LATENCY_MS`` as a latency bound, not only an idle wait.

A bare ``getmany`` returns as soon as anything is buffered: at 300 records/s a worker
sees batches of ~3 records and pays its fixed cost per batch (a polars pass, a produce
request, a commit, a transaction under exactly-once) every 3 records. :func:`fill` keeps
fetching after the first records arrived until one of:

* ``max_records`` records in all, or ``per_partition`` records of one partition (a full
  batch is returned at once: no latency is added when batches are full);
* ``max_latency_ms`` since the first records arrived (the latency bound), less ``held_ms``: how long the broker
  may have held them for more (the worker's ``fetch.max.wait.ms`` with a ``fetch.min.bytes``:
  :func:`~streams.kafka.connection.fetch_wait_ms`), so that a record waits at most ``max_latency_ms`` in all;
* ``interrupted()`` (the worker is stopping), or a fetch that raises (the records in hand
  are returned: the client's position is past them; the next poll meets the error again).

The first fetch waits up to ``max_latency_ms`` for anything, as before; an idle poll
still returns empty after it. Records of one partition stay in offset order; when a
partition's position went back during the fill (a rebalance re-assigns it from its
committed offset, or the worker seeks it to retry a batch), the records fetched before
are dropped for that partition: they are fetched again from the new position, so
nothing is lost and nothing is handed over twice.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Protocol, TypeVar

__all__ = ["fill"]


class _Offset(Protocol):
    @property
    def offset(self) -> int: ...


K = TypeVar("K", bound=Hashable)
M = TypeVar("M", bound=_Offset)


async def fill(
    fetch: Callable[[int, int], Awaitable[dict[K, list[M]]]],
    max_records: int,
    max_latency_ms: int,
    *,
    per_partition: int | None = None,
    held_ms: int = 0,
    interrupted: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
) -> dict[K, list[M]]:
    """One poll's records: ``fetch(max_records, timeout_ms)`` (a ``getmany``) called until the batch
    is full or ``max_latency_ms - held_ms`` passed since its first records arrived (see the module docstring)."""
    first = await fetch(max_records, max_latency_ms)
    if not first:
        return first
    deadline = clock() + max(0, max_latency_ms - held_ms) / 1000
    out = {tp: list(ms) for tp, ms in first.items() if ms}
    total = sum(map(len, out.values()))
    limit = per_partition or max_records
    while total < max_records and max(map(len, out.values()), default=0) < limit and not interrupted():
        left_ms = int((deadline - clock()) * 1000)
        if left_ms <= 0:
            break
        try:
            more = await fetch(max_records - total, left_ms)
        except Exception:  # the records in hand were consumed already: hand them over, the next poll raises again
            break
        for tp, ms in more.items():
            if not ms:
                continue
            held = out.get(tp)
            if held and ms[0].offset <= held[-1].offset:  # the position went back: read again from there
                total -= len(held)
                held = None
            if held:
                held.extend(ms)
            else:
                out[tp] = list(ms)
            total += len(ms)
    return out
