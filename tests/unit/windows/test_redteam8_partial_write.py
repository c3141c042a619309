"""A worker killed while writing a batch's stream-time records: its successor counts every record exactly once.

A batch's state records go to one partition of the internal topic in order: its window partials, then its
heartbeat. A SIGKILL while they are being written leaves a prefix of them there: some partials, no heartbeat.

Found by red team 8: on restore, ``counted_through`` was raised to the highest offset of any restored partial, so
the batch's records in the partials that did not reach the topic (a lower offset in a later window) were skipped
as counted: counted in no window (a window with no verdict at all). And the records skipped so were not observed
again, so the clock stayed the older heartbeat's: a record that was late counted in its old window instead. Now
the clock and ``counted_through`` come from the heartbeat; records beyond it are observed again, and skipped only
when the partial of the window they count in covers them.

The independent computation is a plain loop over each partition's records (``docs/stream-time.md``): late when
the window's end <= newest earlier event time - lateness, then counted as ``late`` in the window of that newest
time; every other record counts in its own window.
"""

from __future__ import annotations

import random
from collections import Counter

import numpy as np

from streams.validation.engine import compile_plan
from streams.windows.codec import Heartbeat, Partial, decode, encode, record_key
from streams.windows.merger import WindowMerger
from streams.windows.stream import StreamConfig, StreamTime
from streams.windows.unique import decode_chunk, encode_chunk

from .helpers import LATENESS_MS, T0, WINDOW_MS, frame, plan

CONFIG = StreamConfig(WINDOW_MS, LATENESS_MS, idle_ms=10**12, max_skew_ms=10**12, unique_ms=3_600_000)
NOW = T0 + 10**9
P = plan()
CONFORM = compile_plan(P.contract).conform

Record = tuple[int, int, int]  # (partition, id, event time - T0 in ms)


class Cluster:
    """The compacted stream-time topics in memory, and the source partitions' committed offsets."""

    def __init__(self) -> None:
        self.internal: list[tuple[bytes, bytes | None]] = []
        self.changelog: list[tuple[bytes, bytes | None]] = []
        self.committed: Counter[int] = Counter()

    @staticmethod
    def live(log: list[tuple[bytes, bytes | None]]) -> dict[bytes, bytes]:
        out: dict[bytes, bytes] = {}
        for k, v in log:
            if v is None:
                out.pop(k, None)
            else:
                out[k] = v
        return out

    def restore(self, worker: StreamTime, partition: int) -> None:
        heartbeat, partials = None, []
        for value in self.live(self.internal).values():
            rec = decode(value)
            if isinstance(rec, Heartbeat) and rec.partition == partition:
                heartbeat = rec
            elif isinstance(rec, Partial) and rec.partition == partition:
                partials.append(rec.partial)
        chunks: dict[str, list] = {}
        for key, value in self.live(self.changelog).items():
            column, part, rest = key.decode().split("|")
            if int(part) == partition:
                chunks.setdefault(column, []).append(decode_chunk(rest, value))
        worker.assign(partition, NOW, heartbeat=heartbeat, partials=partials, chunks=chunks)

    def process(self, worker: StreamTime, batch: list[tuple[int, Record]], written: int | None = None) -> None:
        """Process ``batch`` ((offset, record) in offset order per partition); write its state records (only the
        first ``written`` of them: the worker dies while writing) and, when all are written, commit its offsets."""
        df = frame([r[1] for _, r in batch], [T0 + r[2] for _, r in batch], [1.0] * len(batch), ["DE"] * len(batch),
                   ["a"] * len(batch))  # fmt: skip
        parts = np.array([r[0] for _, r in batch], dtype=np.int64)
        offs = np.array([o for o, _ in batch], dtype=np.int64)
        out = worker.process(P.contract.validate(df), CONFORM(df), parts, offs, np.zeros(len(batch), np.int64),
                             now_ms=NOW)  # fmt: skip
        outs = [(self.internal, record_key(r), encode(r)) for r in out.records]
        for (column, part), ch in out.changes.items():
            outs += [(self.changelog, f"{column}|{part}|{c.key}".encode(), encode_chunk(c)) for c in ch.chunks]
            outs += [(self.changelog, f"{column}|{part}|{t}".encode(), None) for t in ch.tombstones]
        for log, key, value in outs[:written]:
            log.append((key, value))
        if written is None or written >= len(outs):
            for p in set(parts.tolist()):
                self.committed[p] = int(offs[parts == p].max()) + 1
                worker.settle(p, self.committed[p])

    def windows(self) -> dict[int, tuple[int, int]]:
        """Every window the merger publishes once every partition is idle: start - T0 -> (records, late)."""
        so = P.schema_obj
        merger = WindowMerger(P.contract.id, so.name, so.topic, LATENESS_MS, idle_ms=0)
        for _, value in self.internal:
            if value is not None:
                merger.feed(decode(value))  # type: ignore[arg-type]
        due = merger.due(NOW + 1)
        assert len({w.key for w in due}) == len(due)
        return {w.key.start_ms - T0: (w.records, w.late) for w in due}


def oracle(records: list[Record]) -> dict[int, tuple[int, int]]:
    newest: dict[int, int] = {}
    counts: dict[int, list[int]] = {}
    for p, _, t in records:
        late = p in newest and t - t % WINDOW_MS + WINDOW_MS <= newest[p] - LATENESS_MS
        home = newest[p] - newest[p] % WINDOW_MS if late else t - t % WINDOW_MS
        counts.setdefault(home, [0, 0])[1 if late else 0] += 1
        newest[p] = max(newest.get(p, t), t)
    return {w: (c[0], c[1]) for w, c in counts.items()}


def offsets(records: list[Record]) -> list[tuple[int, Record]]:
    seen: Counter[int] = Counter()
    out = []
    for r in records:
        out.append((seen[r[0]], r))
        seen[r[0]] += 1
    return out


def test_a_partial_that_did_not_reach_the_topic_does_not_lose_its_records() -> None:
    # offset 1 opens window 10 s; offset 2 (9 s) is still on time for window 0 s: the batch's partials are written
    # window 0 (offsets 0 and 2) first, then window 10 (offset 1), then the heartbeat. Only the first gets out.
    records = [(0, 1, 1_000), (0, 2, 10_500), (0, 3, 9_000)]
    cluster, rows = Cluster(), offsets(records)
    worker = StreamTime(P, CONFIG, 1)
    cluster.restore(worker, 0)
    cluster.process(worker, rows[:1])
    cluster.process(worker, rows[1:], written=1)
    successor = StreamTime(P, CONFIG, 1)  # the worker was SIGKILLed: a new one restores and reads again
    cluster.restore(successor, 0)
    cluster.process(successor, rows[cluster.committed[0] :])
    assert cluster.windows() == oracle(records) == {0: (2, 0), 10_000: (1, 0)}


def test_records_counted_before_the_crash_still_move_the_restored_clock() -> None:
    # batch 2's partial (window 30 s) reached the topic, its heartbeat did not; offset 2 (5 s) is late after it
    records = [(0, 1, 1_000), (0, 2, 30_000), (0, 3, 5_000)]
    cluster, rows = Cluster(), offsets(records)
    worker = StreamTime(P, CONFIG, 1)
    cluster.restore(worker, 0)
    cluster.process(worker, rows[:1])
    cluster.process(worker, rows[1:2], written=1)
    successor = StreamTime(P, CONFIG, 1)
    cluster.restore(successor, 0)
    cluster.process(successor, rows[cluster.committed[0] :])
    assert cluster.windows() == oracle(records) == {0: (1, 0), 30_000: (1, 1)}


def test_killed_while_writing_at_random_points_every_record_counts_once() -> None:
    """Random streams over 1-4 partitions, polled in random sizes; now and then the worker dies after writing a
    random prefix of a batch's state records, and a new one restores its partitions and reads them again."""
    for seed in range(60):
        rnd = random.Random(seed)
        n_parts = rnd.randint(1, 4)
        clocks = [0] * n_parts
        records: list[Record] = []
        for _ in range(rnd.randint(3, 40)):
            p = rnd.randrange(n_parts)
            clocks[p] += rnd.choice([0, 500, 3_000, 9_000])
            records.append((p, rnd.randrange(5), max(0, clocks[p] + rnd.choice([0, 0, -1_000, -2_500, -15_000]))))
        by_part: dict[int, list[tuple[int, Record]]] = {}
        for o, r in offsets(records):
            by_part.setdefault(r[0], []).append((o, r))
        cluster = Cluster()
        worker = StreamTime(P, CONFIG, n_parts)
        for p in range(n_parts):
            cluster.restore(worker, p)
        position = dict.fromkeys(range(n_parts), 0)
        while any(position[p] < len(by_part.get(p, [])) for p in range(n_parts)):
            batch = []
            for p in range(n_parts):
                take = by_part.get(p, [])[position[p] : position[p] + rnd.choice([1, 2, 3, 6])]
                batch += take
                position[p] += len(take)
            if not batch:
                continue
            if rnd.random() < 0.3:
                cluster.process(worker, batch, written=rnd.randrange(6))
                worker = StreamTime(P, CONFIG, n_parts)
                for p in range(n_parts):
                    cluster.restore(worker, p)
                    position[p] = cluster.committed[p]
            else:
                cluster.process(worker, batch)
        for hb in worker.heartbeats(NOW):  # the tick's: partitions without records register too
            cluster.internal.append((record_key(hb), encode(hb)))
        assert cluster.windows() == oracle(records), seed
