"""Workers, the internal topic and the merger, without a broker: one verdict per window, counts equal to
one computation over all records, whatever the split over workers, and the same after a crash and replay."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from streams.validation.engine import compile_plan
from streams.windows.codec import Heartbeat, Partial, decode, encode, record_key
from streams.windows.finalize import finalize
from streams.windows.merger import WindowMerger
from streams.windows.stream import StreamConfig, StreamTime
from streams.windows.unique import decode_chunk, encode_chunk

from .helpers import LATENESS_MS, T0, WINDOW_MS, frame, plan

CONFIG = StreamConfig(WINDOW_MS, LATENESS_MS, idle_ms=5_000, max_skew_ms=3_600_000, unique_ms=3_600_000)
PARTITIONS = 4
NOW = T0 + 60_000
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)  # each example is slow: report it as found

record = st.tuples(
    st.integers(0, PARTITIONS - 1),
    st.one_of(st.none(), st.integers(0, 10)),
    st.integers(0, 35_000),
    st.one_of(st.none(), st.floats(-10, 100, allow_nan=False)),
    st.sampled_from(["DE", "FR", "XX", None]),
)


class Topic:
    """A compacted topic in memory: the log, and the latest value per key."""

    def __init__(self) -> None:
        self.log: list[tuple[bytes, bytes | None]] = []

    def send(self, key: bytes, value: bytes | None) -> None:
        self.log.append((key, value))

    def compacted(self) -> dict[bytes, bytes]:
        out: dict[bytes, bytes] = {}
        for k, v in self.log:
            if v is None:
                out.pop(k, None)
            else:
                out[k] = v
        return out


def batches(records: list[tuple], size: int) -> list[tuple[pl.DataFrame, np.ndarray, np.ndarray]]:
    """(frame, partitions, offsets) per batch of ``size``; a record's code is its 6th item, else ``a``."""
    offsets, nxt = [], dict.fromkeys(range(PARTITIONS), 0)
    for r in records:
        offsets.append(nxt[r[0]])
        nxt[r[0]] += 1
    out = []
    for i in range(0, len(records), size):
        chunk = records[i : i + size]
        df = frame([r[1] for r in chunk], [T0 + r[2] for r in chunk], [r[3] for r in chunk],
                   [r[4] for r in chunk], [r[5] if len(r) > 5 else "a" for r in chunk])  # fmt: skip
        out.append((df, np.array([r[0] for r in chunk]), np.array(offsets[i : i + size])))
    return out


def feed(worker: StreamTime, df: pl.DataFrame, parts: np.ndarray, offs: np.ndarray, internal: Topic,
         changelog: Topic) -> np.ndarray:  # fmt: skip
    p = worker.plan
    report = p.contract.validate(df)
    conformed = compile_plan(p.contract).conform(df)
    out = worker.process(report, conformed, parts, offs, np.zeros(len(offs), dtype=np.int64), now_ms=NOW)
    for rec in out.records:
        internal.send(record_key(rec), encode(rec))
    for (column, part), changes in out.changes.items():
        for chunk in changes.chunks:
            changelog.send(f"{column}|{part}|{chunk.key}".encode(), encode_chunk(chunk))
        for tomb in changes.tombstones:
            changelog.send(f"{column}|{part}|{tomb}".encode(), None)
    return out.valid


def restore(worker: StreamTime, partition: int, internal: Topic, changelog: Topic) -> None:
    """What a worker does on assignment: read the compacted topics for the partition."""
    heartbeat, partials = None, []
    for value in internal.compacted().values():
        rec = decode(value)
        if isinstance(rec, Heartbeat) and rec.partition == partition:
            heartbeat = rec
        elif isinstance(rec, Partial) and rec.partition == partition:
            partials.append(rec.partial)
    chunks: dict[str, list] = {}
    for key, value in changelog.compacted().items():
        column, part, rest = key.decode().split("|")
        if int(part) == partition:
            chunk = decode_chunk(rest, value)
            assert not isinstance(chunk, str)
            chunks.setdefault(column, []).append(chunk)
    worker.assign(partition, NOW, heartbeat=heartbeat, partials=partials, chunks=chunks)


def merge_topic(internal: Topic, now_ms: int) -> tuple[WindowMerger, list]:
    p = plan()
    so = p.schema_obj
    merger = WindowMerger(p.contract.id, so.name, so.topic, LATENESS_MS, CONFIG.idle_ms)
    for _, value in internal.log:
        if value is not None:
            rec = decode(value)
            assert not hasattr(rec, "reason")
            merger.feed(rec)  # type: ignore[arg-type]
    due = merger.due(now_ms)
    closed, tombstones = merger.close(due)
    internal.send(record_key(closed), encode(closed))
    for key in tombstones:
        internal.send(key, None)
    return merger, [finalize(p, w) for w in due]


def oracle(records: list[tuple]) -> dict[int, pl.DataFrame]:
    """The non-late records of each window, by a plain loop over each partition's records in order."""
    newest: dict[int, int] = {}
    keep: dict[int, list[int]] = {}
    for i, r in enumerate(records):
        t = r[2]
        late = r[0] in newest and (t - t % WINDOW_MS) + WINDOW_MS <= newest[r[0]] - LATENESS_MS
        newest[r[0]] = max(newest.get(r[0], t), t)
        if not late:
            keep.setdefault(T0 + t - t % WINDOW_MS, []).append(i)
    whole = frame([r[1] for r in records], [T0 + r[2] for r in records], [r[3] for r in records],
                  [r[4] for r in records], ["a"] * len(records))  # fmt: skip
    return {start: whole[rows] for start, rows in keep.items()}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], phases=NO_SHRINK)
@given(st.lists(record, min_size=1, max_size=60), st.integers(1, 12), st.integers(0, 6), st.integers(0, 6))
def test_two_workers_one_verdict_per_window_equal_to_one_frame(
    records: list[tuple], size: int, crash_at: int, abort_at: int
) -> None:
    """... also when worker a's outputs of batch ``abort_at`` are lost (an aborted transaction) and the batch is
    read again by the same process, before a crash (its state must reach the topics all the same)."""
    internal, changelog = Topic(), Topic()
    p = plan()
    owners = {0: "a", 1: "a", 2: "b", 3: "b"}
    workers = {"a": StreamTime(p, CONFIG, PARTITIONS), "b": StreamTime(p, CONFIG, PARTITIONS)}
    for w in workers.values():
        for part, owner in owners.items():
            if w is workers[owner]:
                w.assign(part, NOW)
    valid: dict[tuple[int, int], bool] = {}
    todo = batches(records, size)
    skip_a = -1
    for i, (df, parts, offs) in enumerate(todo):
        for name, w in workers.items():
            rows = np.flatnonzero([owners[int(x)] == name for x in parts])
            if len(rows) and not (name == "a" and i == skip_a):
                if name == "a" and i == abort_at:  # outputs lost, in-memory state kept: the poll is read again
                    feed(w, df[rows], parts[rows], offs[rows], Topic(), Topic())
                verdict = feed(w, df[rows], parts[rows], offs[rows], internal, changelog)
                valid.update(
                    {(int(a), int(b)): bool(v) for a, b, v in zip(parts[rows], offs[rows], verdict, strict=True)}
                )
        if i == crash_at:
            # worker a is SIGKILLed after publishing batch i but before committing it: a new process restores
            # its partitions and replays from the last commit, cut differently (batches i and i + 1 as one)
            workers["a"] = StreamTime(p, CONFIG, PARTITIONS)
            for part in (0, 1):
                restore(workers["a"], part, internal, changelog)
            nxt = todo[i + 1] if i + 1 < len(todo) else None
            df2 = df if nxt is None else pl.concat([df, nxt[0]])
            parts2 = parts if nxt is None else np.concatenate([parts, nxt[1]])
            offs2 = offs if nxt is None else np.concatenate([offs, nxt[2]])
            rows = np.flatnonzero([owners[int(x)] == "a" for x in parts2])
            if len(rows):
                again = feed(workers["a"], df2[rows], parts2[rows], offs2[rows], internal, changelog)
                seen = [(int(a), int(b)) for a, b in zip(parts2[rows], offs2[rows], strict=True)]
                n_old = sum(1 for key in seen if key in valid)
                assert [valid[key] for key in seen[:n_old]] == again[:n_old].tolist()  # replayed: same verdicts
                valid.update({key: bool(v) for key, v in zip(seen, again, strict=True)})
            skip_a = i + 1
    for w in workers.values():  # the periodic heartbeat of every assigned partition, records or not
        for hb in w.heartbeats(NOW):
            internal.send(record_key(hb), encode(hb))
    # then heartbeats stop: after the idle delay every window is final
    merger, verdicts = merge_topic(internal, NOW + CONFIG.idle_ms)
    expected = oracle(records)
    assert sorted(v.key.start_ms for v in verdicts) == sorted(
        set(expected) | {v.key.start_ms for v in verdicts if v.rows == 0}
    )
    for v in verdicts:
        window = expected.get(v.key.start_ms)
        n = 0 if window is None else window.height
        assert v.rows == v.records == n
        if window is None:
            continue
        truth = p.contract.validate(window)
        for name in ("amount:minimum", "amount_nulls", "country_known", "enough_rows", "big_share", "id:required"):
            got, want = v.check(name).result, truth.check(name)
            assert (got.failures, got.passed) == (want.failures, want.passed), name
    assert merger.stats.overlapping == 0
    # a second pass over the topic (a new merger owner) publishes nothing again
    _, again = merge_topic(internal, NOW + CONFIG.idle_ms)
    assert again == []


def test_a_batch_read_again_after_its_outputs_were_lost_writes_its_claims_and_partials_again() -> None:
    """Exactly-once abort (or a failed produce): the batch's outputs never reached the topics, the process kept its
    state and reads the batch again. The second pass must publish the claims and partials, or a restart after it
    lets a duplicate pass and a window lose records."""
    p = plan()
    internal, changelog = Topic(), Topic()
    worker = StreamTime(p, CONFIG, PARTITIONS)
    worker.assign(0, NOW)
    [(df, parts, offs)] = batches([(0, 1, 1_000, 5.0, "DE"), (0, 2, 1_500, 5.0, "DE")], 10)
    feed(worker, df, parts, offs, Topic(), Topic())  # its outputs are lost
    assert feed(worker, df, parts, offs, internal, changelog).tolist() == [True, True]  # read again
    restarted = StreamTime(p, CONFIG, PARTITIONS)
    restore(restarted, 0, internal, changelog)
    [(dup, dparts, _)] = batches([(0, 2, 2_000, 5.0, "DE")], 10)
    assert feed(restarted, dup, dparts, np.array([2]), internal, changelog).tolist() == [False]  # id 2 is taken
    for part in range(1, PARTITIONS):
        restarted.assign(part, NOW)
    for hb in restarted.heartbeats(NOW):
        internal.send(record_key(hb), encode(hb))
    _, verdicts = merge_topic(internal, NOW + CONFIG.idle_ms)
    assert [(v.records, v.valid, v.quarantined) for v in verdicts] == [(3, 2, 1)]


def test_a_skewed_record_does_not_expire_the_claims_of_its_partition() -> None:
    """A record two days ahead of the wall clock (skewed: it does not advance the watermark) advanced the clock of
    uniqueness expiry: the next expiry dropped every claim of its partition, and a later duplicate passed (found
    as 15 duplicates caught of 16 in the three-process SIGKILL test on the broker)."""
    config = replace(CONFIG, max_skew_ms=86_400_000)  # a day; the horizon is an hour
    worker = StreamTime(plan(), config, PARTITIONS)
    worker.assign(0, NOW)
    rows = [(0, 1, 1_000, 5.0, "DE"), (0, 2, 2_000, 5.0, "DE"), (0, 3, 2 * 86_400_000, 5.0, "DE")]
    rows += [(0, 1, 3_000, 5.0, "DE")]  # a duplicate of 1
    internal, changelog = Topic(), Topic()
    *first, (dup, dparts, doffs) = batches(rows, 1)
    verdicts = [feed(worker, df, parts, offs, internal, changelog).tolist() for df, parts, offs in first]
    assert verdicts == [[True], [True], [True]] and worker.expire() == 0
    assert feed(worker, dup, dparts, doffs, internal, changelog).tolist() == [False]
    later = [(0, 4, 2 * config.unique_ms, 5.0, "DE")]  # the partition's own clock passes the horizon: 1 and 2 go
    [(df, parts, _)] = batches(later, 1)
    held = sum(len(u) for u in worker.states[0].unique.values())  # 1, 2 and the skewed 3
    feed(worker, df, parts, np.array([4]), internal, changelog)  # claims 4; 1 and 2 expire as it is judged
    assert (held, sum(len(u) for u in worker.states[0].unique.values()), worker.expire()) == (3, 2, 0)
