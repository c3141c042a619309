"""Where a worker run's wall time goes: the phases of :class:`~streams.kafka.batches.BatchWorker`, timed.

``bench_worker.py`` installs this in its worker children when ``BENCH_WORKER_TRACE=1`` (inherited by the children,
so a ``--baseline`` tree is traced alike). It wraps, by name, the worker's and the aiokafka transport's coroutines
(a method the traced tree does not have is skipped) and adds to the child's JSON line a ``trace``: per phase the
calls, the seconds spent in them, summed, and the longest call (wall time: they overlap where the worker overlaps
them):

* ``poll``: ``transport.poll`` (a ``getmany`` and the records' unpacking; the fill of a slow feed);
* ``prepare``: decoding, validating and fitting a poll's batches (in a thread while a commit or acks are pending);
* ``submit``: handing a poll's outputs to the producer (``_submit_poll``);
* ``commit_wait``: the worker waiting for the last exactly-once transaction to end (``_settle``);
* ``offsets`` / ``commit``: the transaction's offsets and its commit, in the background (their round trips);
* ``probe``: the broker probe and topic check every ``topic_check_interval_s`` (``transport.probe``);
* ``transactions``: transactions committed and their mean records;
* ``gc``: the cyclic collector's collections per generation, their summed and longest pause (``gc.callbacks``; a
  pause stops every thread holding the GIL, the event loop's included);
* ``stall``: the event loop's stalls from the first poll on: a task asking to wake every 5 ms, its lateness summed
  over the wakes later than 20 ms, their count and the longest (a stall delays every round trip the loop handles);
* ``slowest``: the three longest batch latencies (poll to commit, ms), when their poll was read (s from the first
  poll) and their phases, in ms from the poll: ``prep``/``prepd`` processing started/ended, ``sent`` handed to the
  producer, ``acked`` every output acknowledged, ``reaped`` its offsets' commit decided and ``commit`` started
  (at-least-once: the gap is the loop being busy), ``commit`` (exactly-once: its transaction's end), ``done``
  committed. A run's p99 is its one or two slowest batches (~60-160 latencies per run of 300,000 records);
* ``gaps`` (exactly-once): a batch's latency cut at its phases (processed; to sent: waiting for the last commit;
  to its transaction's end; the offsets sent; ``EndTxn`` after the flush; acknowledged), the median batch's ms
  against the median of the slowest 2% (a run's p99), and ``offs`` among the slowest batches' marks;
* ``requests``: the transactional producer's requests timed inside aiokafka's sender (calls, retried, median and
  longest ms, when the longest began): which round trip a slow commit spent its time in;
* ``slow_callbacks`` (``BENCH_WORKER_SLOW=1``): asyncio's debug mode's callbacks longer than 20 ms, by callback.

The loop is serial where ``poll + prepare + submit + commit_wait`` is close to the run's seconds.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

__all__ = ["install", "line", "summary", "watch_loop"]

_SPENT: dict[str, list[float]] = defaultdict(list)
_SIZES: list[int] = []
_GC: dict[int, list[float]] = defaultdict(list)
_GC_START: list[float] = [0.0]
_STALLS: list[tuple[float, float]] = []  # (when, lateness)
_LATENCIES: list[tuple[float, float, str]] = []  # (polled at, latency, its phases) of every batch committed
_MARKS: dict[tuple[Any, int], dict[str, float]] = defaultdict(dict)  # (partition, first offset) -> phase -> when
_TX: list[list[Any]] = [[]]  # the batches of the exactly-once transaction committing (one at a time)
_GAPS: dict[str, list[float]] = defaultdict(list)  # exactly-once: per batch, ms between two phases (see _GAP_OF)
#: a batch's latency cut in the exactly-once phases: its poll to processed, processed to sent (waiting for the
#: last transaction's commit), sent to its transaction's end decided, the offsets sent, and the commit's end
_GAP_OF = (
    ("processed", None, "prepd"),
    ("to_sent", "prepd", "sent"),
    ("to_end", "sent", "commit"),
    ("offsets", "commit", "offs"),
    ("end_txn", "offs", None),
    ("acked", None, "acked"),
)


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


_REQUESTS: dict[str, list[tuple[float, float, bool]]] = defaultdict(list)  # aiokafka's requests: (at, s, succeeded)


def _requests() -> None:
    """Time the transactional producer's requests inside aiokafka's sender (each handler's ``do``: one request and
    its response, False when it is retried), the coordinator look-ups and the flush before ``EndTxn``."""
    from aiokafka.producer import sender

    def timed(cls: Any, method: str, name: str) -> None:
        original = getattr(cls, method, None)
        if original is None:
            return

        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            result = await original(self, *args, **kwargs)
            _REQUESTS[name].append((start, time.perf_counter() - start, result is not False))
            return result

        setattr(cls, method, wrapper)

    for cls, name in (("AddPartitionsToTxnHandler", "add_partitions"), ("AddOffsetsToTxnHandler", "add_offsets"),
                      ("TxnOffsetCommitHandler", "txn_offsets"), ("EndTxnHandler", "end_txn"),
                      ("SendProduceReqHandler", "produce")):  # fmt: skip
        if hasattr(sender, cls):
            timed(getattr(sender, cls), "do", name)
    timed(sender.Sender, "_find_coordinator", "find_coordinator")
    timed(sender.Sender, "_do_txn_commit", "flush_and_end")


def _mark(batches: Any, phase: str) -> None:
    now = time.perf_counter()
    for b in batches:
        _MARKS[(b.tp, b.first)].setdefault(phase, now)


def _phases(b: Any, at: float) -> str:
    """A batch's latency cut at its marks: ms from the poll to each, in order."""
    found = _MARKS.pop((b.tp, b.first), {})
    if "offs" in found:
        for name, start, end in _GAP_OF:
            t0, t1 = found.get(start, b.polled_at) if start else b.polled_at, found.get(end, at) if end else at
            _GAPS[name].append((t1 - t0) * 1000)
        _GAPS["total"].append((at - b.polled_at) * 1000)
    marks = sorted(found.items(), key=lambda kv: kv[1])
    return " ".join(f"{k}+{(t - b.polled_at) * 1000:.0f}" for k, t in marks) + f" done+{(at - b.polled_at) * 1000:.0f}"


def _collected(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _GC_START[0] = time.perf_counter()
    else:
        _GC[info["generation"]].append(time.perf_counter() - _GC_START[0])


def install() -> None:
    """Wrap the phases and watch the collector (call before the worker starts)."""
    from streams.kafka import aiokafka_transport, batches

    worker, transport = batches.BatchWorker, aiokafka_transport.AIOKafkaTransport
    for method, phase in (("_prepare", "prepare"), ("_submit_poll", "submit"), ("_settle", "commit_wait")):
        _timed(worker, method, phase)
    for method, phase in (("poll", "poll"), ("send_offsets_to_transaction", "offsets"),
                          ("commit_transaction", "commit"), ("probe", "probe")):  # fmt: skip
        _timed(transport, method, phase)
    end = getattr(worker, "_end_transaction", None)
    if end is not None:

        def ended(self: Any) -> None:
            tx = getattr(self, "_open", None)
            if tx is not None:
                _SIZES.append(tx.records)
                _mark(tx.batches, "commit")
                _TX[0] = list(tx.batches)
            end(self)

        worker._end_transaction = ended  # type: ignore[method-assign]
    offsets_sent = getattr(transport, "send_offsets_to_transaction", None)
    if offsets_sent is not None:

        async def offsets_marked(self: Any, *args: Any, **kwargs: Any) -> Any:
            batches = _TX[0]
            result = await offsets_sent(self, *args, **kwargs)
            _mark(batches, "offs")
            return result

        transport.send_offsets_to_transaction = offsets_marked  # type: ignore[method-assign]
    done, submit, acks, prepare = worker._done, worker._submit, worker._commit_acknowledged, worker._prepare

    async def prepared(self: Any, batches: Any) -> Any:
        keys = [(tp, ms[0].offset) for tp, ms in batches if ms]
        for k in keys:
            _MARKS[k].setdefault("prep", time.perf_counter())
        try:
            return await prepare(self, batches)
        finally:
            for k in keys:
                _MARKS[k].setdefault("prepd", time.perf_counter())

    def accounted(self: Any, batches: Any, now: float | None = None) -> None:
        at = time.perf_counter() if now is None else now
        _LATENCIES.extend((b.polled_at, at - b.polled_at, _phases(b, at)) for b in batches)
        done(self, batches, now)

    async def submitted(self: Any, *args: Any, **kwargs: Any) -> Any:
        batch = await submit(self, *args, **kwargs)
        _mark([batch], "sent")
        futures = [*batch.futures, *batch.event_futures]
        left = [len(futures)]

        def acked(_: Any) -> None:
            left[0] -= 1
            if not left[0]:
                _mark([batch], "acked")

        for f in futures:
            f.add_done_callback(acked)
        return batch

    def committing(self: Any, offsets: Any, batches: Any) -> Any:
        _mark(batches, "reaped")  # the commit decided (its coroutine created); "commit": when it starts running

        async def run() -> Any:
            _mark(batches, "commit")
            return await acks(self, offsets, batches)

        return run()

    worker._done, worker._submit, worker._commit_acknowledged = accounted, submitted, committing  # type: ignore[method-assign]
    worker._prepare = prepared  # type: ignore[method-assign]
    gc.callbacks.append(_collected)
    _requests()


_SLOW: dict[str, list[float]] = defaultdict(list)


class _SlowCallbacks(logging.Handler):
    """asyncio's debug-mode warnings of slow callbacks, by callback."""

    def emit(self, record: logging.LogRecord) -> None:
        m = re.match(r"Executing (.*) took ([0-9.]+) seconds", record.getMessage())
        if m:
            what = re.sub(r" at 0x[0-9a-f]+| created at .*|\bcb=\[.*\]", "", m.group(1))
            _SLOW[re.sub(r"\s+", " ", what)[:150]].append(float(m.group(2)))


async def watch_loop(every: float = 0.005, late: float = 0.02) -> None:
    """Record the event loop's stalls (run as a task until cancelled); with ``BENCH_WORKER_SLOW=1`` also asyncio's
    debug mode's slow callbacks (longer than 20 ms), by callback."""
    if os.environ.get("BENCH_WORKER_SLOW") == "1":
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = late
        logging.getLogger("asyncio").addHandler(_SlowCallbacks())
    while True:
        start = time.perf_counter()
        await asyncio.sleep(every)
        lateness = time.perf_counter() - start - every
        if lateness > late:
            _STALLS.append((start, lateness))


def summary() -> dict[str, Any]:
    """Per phase: ``[calls, seconds, longest]``; ``transactions``: ``[count, mean records]``; ``gc``: per generation
    ``[collections, seconds, longest]``; ``stall``: ``[count, seconds, longest]``; ``slowest``: ``[[ms, at s]]``."""
    out: dict[str, Any] = {phase: [len(v), sum(v), max(v)] for phase, v in _SPENT.items()}
    if _SIZES:
        out["transactions"] = [len(_SIZES), sum(_SIZES) / len(_SIZES)]
    out["gc"] = {str(g): [len(v), sum(v), max(v)] for g, v in sorted(_GC.items())}
    first = min((t for t, _, _ in _LATENCIES), default=0.0)
    stalls = [s for t, s in _STALLS if t >= first]  # from the first poll on (not the start-up)
    out["stall"] = [len(stalls), sum(stalls), max(stalls, default=0.0)]
    if _LATENCIES:
        slowest = sorted(_LATENCIES, key=lambda x: -x[1])[:5]
        out["slowest"] = [[round(s * 1000), round(t - first, 2), marks] for t, s, marks in slowest]
    if _GAPS.get("total"):  # the phases of the slowest 2% of batches (a run's p99) against the median batch's
        total = _GAPS["total"]
        order = sorted(range(len(total)), key=total.__getitem__)
        tail = order[-max(1, len(order) // 50) :]
        out["gaps"] = {k: [round(_median(v), 1), round(_median([v[i] for i in tail]), 1)] for k, v in _GAPS.items()}
    if _REQUESTS:  # per request: calls, retried, median and longest ms, when the longest began (s from the first poll)
        out["requests"] = {
            k: [len(v), sum(not ok for _, _, ok in v), round(_median([d for _, d, _ in v]) * 1000, 1),
                round(max(d for _, d, _ in v) * 1000), round(max(v, key=lambda x: x[1])[0] - first, 2)]
            for k, v in _REQUESTS.items()
        }  # fmt: skip
    if _SLOW:
        out["slow_callbacks"] = sorted(([k, len(v), sum(v)] for k, v in _SLOW.items()), key=lambda x: -x[2])[:6]
    return out


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else float("nan")


def line(trace: dict[str, Any]) -> str:
    """One line of a run's trace, for the round's printout."""
    phases = ("poll", "prepare", "submit", "commit_wait", "offsets", "commit", "probe")
    parts = [f"{p} {trace[p][1]:.2f} s (max {trace[p][2] * 1000:.0f} ms)" if len(trace[p]) > 2 else
             f"{p} {trace[p][1]:.2f} s" for p in phases if p in trace]  # fmt: skip
    if "transactions" in trace:
        n, size = trace["transactions"]
        parts.append(f"{n} transactions of {size:,.0f} records")
    for g, (n, s, longest) in trace.get("gc", {}).items():
        parts.append(f"gc{g} {n}× {s * 1000:.0f} ms (max {longest * 1000:.1f})")
    if "stall" in trace:
        n, s, longest = trace["stall"]
        parts.append(f"loop stalls >20 ms {n}× {s * 1000:.0f} ms (max {longest * 1000:.0f})")
    if "gaps" in trace:
        parts.append(
            "phases ms median/slowest 2%: " + " ".join(f"{k} {a:g}/{b:g}" for k, (a, b) in trace["gaps"].items())
        )
    if "requests" in trace:
        parts.append(
            "requests (calls, retried, median/max ms @s): "
            + " ".join(f"{k} {n}/{r} {m:g}/{x}@{at:g}" for k, (n, r, m, x, at) in trace["requests"].items())
        )
    if "slowest" in trace:
        parts.append(
            "slowest:\n           "
            + "\n           ".join(f"{ms} ms @{at:g}s: {marks}" for ms, at, marks in trace["slowest"])
        )
    for what, n, seconds in trace.get("slow_callbacks", []):
        parts.append(f"\n           slow callback {n}× {seconds * 1000:.0f} ms: {what}")
    return "trace: " + ", ".join(parts)
