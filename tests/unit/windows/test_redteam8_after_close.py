"""Records that reach a window after the merger closed it are counted as late in the next window, all of them.

``docs/stream-time.md``: a record that arrives for a window closed by the idle rule is counted as ``late`` in the
next window the merger publishes. Found by red team 8 (a conservation check: every record counted once, in a
window's ``records`` or in some window's ``late``, over streams with idle closes):

* the merger's worker drops a published window's partial, so its next records start a fresh partial, which then
  grows: the grown snapshot overlapped the merger's memory (the published records and the fresh ones merged) and
  added nothing (``max(total - memory, 0)``): a window's records after close were counted only up to the first
  snapshot (found: 86 of 110 records counted);
* a window the merger closed while no partition had a record of it (an idle close past it) was not in its memory,
  and records reaching it later were taken for replays of a summary published before a restart: never counted.
"""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np

from streams.validation.engine import compile_plan
from streams.windows.codec import decode, encode
from streams.windows.merger import WindowMerger
from streams.windows.stream import StreamTime

from .helpers import T0, frame, plan
from .test_merger import W2, W, hb, merger, snap
from .test_redteam8_partial_write import CONFIG

W3 = replace(W2, start_ms=20_000, end_ms=30_000)
NOW = 1_000_000


def closed_by_idle(m: WindowMerger, *windows: object) -> None:
    for s in windows:
        m.feed(s)  # type: ignore[arg-type]
    m.feed(hb(0, 25_000))
    m.feed(hb(1, None))
    due = m.due(NOW + 30_000)  # idle close
    m.close(due)


def test_a_fresh_partial_that_grows_after_the_close_adds_what_it_grew_by() -> None:
    m = merger()
    closed_by_idle(m, snap(W, 0, 0, 4), snap(W3, 0, 5, 5))
    m.feed(snap(W, 0, 7, 9))  # a fresh partial (its owner dropped the published one): 3 more
    m.feed(snap(W, 0, 7, 12))  # ... grown: 3 more again
    m.feed(snap(W, 0, 7, 12))  # replayed: nothing
    m.feed(snap(W, 0, 0, 4))  # the published one replayed: nothing
    assert m.pending_late == 6


def test_records_of_a_window_closed_without_any_reach_the_next_window_as_late() -> None:
    m = merger()
    closed_by_idle(m, snap(W, 0, 0, 4), snap(W3, 0, 5, 5))  # W2 had no record when the close passed it
    m.feed(snap(W2, 1, 0, 1))  # 2 records of it on partition 1
    m.feed(snap(W2, 1, 0, 3))  # grown: 2 more
    assert m.pending_late == 4
    restarted = merger()  # a new owner of the merger reads the closed marker: it cannot tell, and counts nothing
    for record in (hb(0, 25_000), hb(1, None)):
        restarted.feed(record)
    restarted.closed_through = m.closed_through
    restarted.feed(snap(W2, 1, 0, 5))
    assert restarted.pending_late == 0


def test_every_record_is_counted_once_over_streams_with_idle_closes() -> None:
    """One worker (it merges too, and drops what the merger closed, as the observer does), a wall clock that
    advances between polls, windows closed by the idle rule while a slow partition still brings their records."""
    p = plan()
    conform = compile_plan(p.contract).conform
    so = p.schema_obj
    for seed in range(60):
        rnd = random.Random(seed)
        n_parts = rnd.randint(1, 3)
        config = replace(CONFIG, idle_ms=rnd.choice([1_000, 3_000]))
        worker = StreamTime(p, config, n_parts)
        m = WindowMerger(p.contract.id, so.name, so.topic, config.lateness_ms, config.idle_ms)
        wall, clocks, offsets, total = T0 + 10**9, [0] * n_parts, [0] * n_parts, 0
        for q in range(n_parts):
            worker.assign(q, wall)
        for _ in range(rnd.randint(5, 40)):
            wall += rnd.choice([0, 500, 2_000, 5_000])
            batch = []
            for q in range(n_parts):
                for _ in range(rnd.choice([0, 0, 1, 3])):
                    clocks[q] += rnd.choice([0, 1_000, 9_000])
                    batch.append((q, offsets[q], T0 + max(0, clocks[q] + rnd.choice([0, -4_000, -25_000]))))
                    offsets[q] += 1
            if batch:
                df = frame([1] * len(batch), [t for _, _, t in batch], [1.0] * len(batch), ["DE"] * len(batch),
                           ["a"] * len(batch))  # fmt: skip
                parts, offs = np.array([b[0] for b in batch]), np.array([b[1] for b in batch])
                kafka = np.zeros(len(batch), np.int64)
                out = worker.process(p.contract.validate(df), conform(df), parts, offs, kafka, now_ms=wall)
                for q in range(n_parts):
                    worker.settle(q, offsets[q])
                for rec in out.records:
                    m.feed(decode(encode(rec)))  # type: ignore[arg-type]
                total += len(batch)
            for beat in worker.heartbeats(wall):  # the tick: heartbeats, then the merger's due windows
                m.feed(beat)
            due = m.due(wall)
            if due:
                closed, _ = m.close(due)
                total -= sum(w.records + w.late for w in due)
                for q in range(n_parts):
                    worker.close_through(q, closed.through_ms)
        final = m.due(wall + 10**12)  # every partition idle: the rest (a window's ``late`` takes what is pending)
        assert total == sum(w.records + w.late for w in final) + (0 if final else m.pending_late), seed
