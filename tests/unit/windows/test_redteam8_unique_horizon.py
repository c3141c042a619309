"""Stream uniqueness forgets a value once the horizon has passed on its partition's clock, whenever that happens.

``docs/stream-time.md``: a record fails ``field_uniqueness`` when a record with the same value was accepted earlier
within the horizon; a claim lives between ``horizon`` and ``horizon + horizon/24``, measured against the
partition's newest event time.

Found by red team 8: claims expired only at the observer's tick (every 30 s of wall clock). Between two ticks a
claim lived as long as the event time that went by: in a backfill (a day of records in seconds), or with a horizon
of seconds (``qstreams.uniqueWithin: 10s``), a value seen again long after the horizon failed as a duplicate; and
within one batch the first record of a value always made the next one fail, however far apart in time. Now the
rows of a partition are judged in runs over which no bucket expires, each after the expired buckets are dropped.

The independent computation is a plain loop per partition, in offset order: the clock is the newest event time so
far (the record's own included); a claim made at event time ``c`` is live while ``(c // bucket + 1) * bucket +
horizon > clock`` (``bucket = horizon // 24``); an accepted record claims its value unless a claim is live.
"""

from __future__ import annotations

import random

import numpy as np

from streams.validation.engine import compile_plan
from streams.windows.stream import StreamConfig, StreamTime

from .helpers import LATENESS_MS, T0, WINDOW_MS, frame, plan

HORIZON = 60_000
CONFIG = StreamConfig(WINDOW_MS, LATENESS_MS, idle_ms=10**12, max_skew_ms=10**12, unique_ms=HORIZON)
NOW = T0 + 10**9
P = plan()
CONFORM = compile_plan(P.contract).conform

Record = tuple[int, int | None, int]  # (partition, id, event time - T0 in ms)


def judge(batches: list[list[Record]], partitions: int = 1) -> list[bool]:
    """The routing verdict of every record, the batches processed one after the other (no tick between them)."""
    worker, nxt, out = StreamTime(P, CONFIG, partitions), [0] * partitions, []
    for batch in batches:
        df = frame([r[1] for r in batch], [T0 + r[2] for r in batch], [1.0] * len(batch), ["DE"] * len(batch),
                   ["a"] * len(batch))  # fmt: skip
        offs = []
        for p, _, _ in batch:
            offs.append(nxt[p])
            nxt[p] += 1
        parts = np.array([r[0] for r in batch], dtype=np.int64)
        result = worker.process(P.contract.validate(df), CONFORM(df), parts, np.array(offs, dtype=np.int64),
                                np.zeros(len(batch), dtype=np.int64), now_ms=NOW)  # fmt: skip
        out += result.valid.tolist()
    return out


def oracle(records: list[Record]) -> list[bool]:
    bucket = HORIZON // 24
    newest: dict[int, int] = {}
    claims: dict[tuple[int, int], int] = {}
    out = []
    for p, key, t in records:
        newest[p] = clock = max(newest.get(p, T0 + t), T0 + t)
        if key is None:  # required: quarantined, claims nothing
            out.append(False)
            continue
        c = claims.get((p, key))
        live = c is not None and (c // bucket + 1) * bucket + HORIZON > clock
        if not live:
            claims[(p, key)] = T0 + t
        out.append(not live)
    return out


def test_a_value_seen_again_after_the_horizon_passes_without_a_tick_between() -> None:
    records = [(0, 7, 0), (0, 7, 30_000), (0, 7, 600_000)]  # the third: ten minutes later, horizon one minute
    assert judge([[r] for r in records]) == oracle(records) == [True, False, True]


def test_within_one_batch_a_value_seen_again_after_the_horizon_passes() -> None:
    records = [(0, 7, 0), (0, 7, 30_000), (0, 7, 600_000), (0, 7, 610_000)]
    assert judge([records]) == oracle(records) == [True, False, True, False]


def test_a_late_record_claims_nothing_already_past_the_horizon() -> None:
    # 1 s is ten minutes behind the partition's clock: its value is accepted, and is no claim for the next record
    records = [(0, 1, 600_000), (0, 7, 1_000), (0, 7, 600_500)]
    assert judge([records]) == oracle(records) == [True, True, True]


def test_uniqueness_over_random_streams_equals_a_plain_loop() -> None:
    for seed in range(80):
        rnd = random.Random(seed)
        n_parts = rnd.randint(1, 3)
        clocks = [0] * n_parts
        records: list[Record] = []
        for _ in range(rnd.randint(2, 60)):
            p = rnd.randrange(n_parts)
            clocks[p] += rnd.choice([0, 1, 1_000, 20_000, 55_000, 70_000])
            jitter = rnd.choice([0, 0, -1, -30_000, -90_000])
            records.append((p, rnd.choice([None, 1, 2, 3]), max(0, clocks[p] + jitter)))
        cuts = sorted(rnd.sample(range(1, len(records)), min(len(records) - 1, rnd.randint(0, 6))))
        batches = [records[a:b] for a, b in zip([0, *cuts], [*cuts, len(records)], strict=True)]
        assert judge(batches, n_parts) == oracle(records), seed
