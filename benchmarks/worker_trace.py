"""Where a worker run's wall time goes: the phases of :class:`~streams.kafka.batches.BatchWorker`, timed.

``bench_worker.py`` installs this in its worker children when ``BENCH_WORKER_TRACE=1`` (inherited by the children,
so a ``--baseline`` tree is traced alike). It wraps, by name, the worker's and the aiokafka transport's coroutines
(a method the traced tree does not have is skipped) and adds to the child's JSON line a ``trace``: per phase the
calls and the seconds spent in them, summed (wall time: they overlap where the worker overlaps them):

* ``poll``: ``transport.poll`` (a ``getmany`` and the records' unpacking; the fill of a slow feed);
* ``prepare``: decoding, validating and fitting a poll's batches (in a thread while a commit or acks are pending);
* ``submit``: handing a poll's outputs to the producer (``_submit_poll``);
* ``commit_wait``: the worker waiting for the last exactly-once transaction to end (``_settle``);
* ``offsets`` / ``commit``: the transaction's offsets and its commit, in the background (their round trips);
* ``transactions``: transactions committed and their mean records.

The loop is serial where ``poll + prepare + submit + commit_wait`` is close to the run's seconds.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

__all__ = ["install", "summary"]

_SPENT: dict[str, list[float]] = defaultdict(list)
_SIZES: list[int] = []


def _timed(cls: type, method: str, phase: str) -> None:
    original: Callable[..., Any] | None = getattr(cls, method, None)
    if original is None:
        return

    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await original(self, *args, **kwargs)
        finally:
            _SPENT[phase].append(time.perf_counter() - start)

    setattr(cls, method, wrapper)


def install() -> None:
    """Wrap the phases (call before the worker starts)."""
    from streams.kafka import aiokafka_transport, batches

    worker, transport = batches.BatchWorker, aiokafka_transport.AIOKafkaTransport
    for method, phase in (("_prepare", "prepare"), ("_submit_poll", "submit"), ("_settle", "commit_wait")):
        _timed(worker, method, phase)
    for method, phase in (("poll", "poll"), ("send_offsets_to_transaction", "offsets"),
                          ("commit_transaction", "commit")):  # fmt: skip
        _timed(transport, method, phase)
    end = getattr(worker, "_end_transaction", None)
    if end is not None:

        def ended(self: Any) -> None:
            tx = getattr(self, "_open", None)
            if tx is not None:
                _SIZES.append(tx.records)
            end(self)

        worker._end_transaction = ended  # type: ignore[method-assign]


def summary() -> dict[str, Any]:
    """Per phase: ``[calls, seconds]``; and ``transactions``: ``[count, mean records]``."""
    out: dict[str, Any] = {phase: [len(v), sum(v)] for phase, v in _SPENT.items()}
    if _SIZES:
        out["transactions"] = [len(_SIZES), sum(_SIZES) / len(_SIZES)]
    return out


def line(trace: dict[str, Any]) -> str:
    """One line of a run's trace, for the round's printout."""
    parts = [f"{p} {trace[p][1]:.2f} s" for p in ("poll", "prepare", "submit", "commit_wait", "offsets", "commit")
             if p in trace]  # fmt: skip
    if "transactions" in trace:
        n, size = trace["transactions"]
        parts.append(f"{n} transactions of {size:,.0f} records")
    return "trace: " + ", ".join(parts)
