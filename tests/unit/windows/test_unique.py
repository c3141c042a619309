"""Stream uniqueness: first accepted claims, offset order, replays, horizon, changelog restore, hashing."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.windows.hashing import mix64, stable_hash
from streams.windows.unique import BYTES_PER_KEY, UniqueState, decode_chunk, encode_chunk

HOUR = 3_600_000


def judge_and_claim(
    state: UniqueState, values: list, offsets: list[int], eligible: list[bool], ts: int = 0
) -> list[bool]:
    h, n = stable_hash(pl.Series(values))
    off = np.array(offsets)
    fails = state.judge(h, n, off, np.array(eligible))
    accepted = np.array(eligible) & ~fails
    state.claim(h[accepted], n[accepted], off[accepted], np.full(int(accepted.sum()), ts))
    return fails.tolist()


def test_first_accepted_record_claims_and_offset_order_decides() -> None:
    s = UniqueState(HOUR)
    # 'b' at offset 1 is rejected by another rule: it claims nothing, so 'b' at 3 is accepted
    values, eligible = ["a", "b", "a", "b", None, None], [True, False, True, True, True, True]
    assert judge_and_claim(s, values, [0, 1, 2, 3, 4, 5], eligible) == [False, False, True, False, False, False]
    # a later batch: duplicates of claimed values fail, new values pass
    assert judge_and_claim(s, ["b", "c", "a"], [6, 7, 8], [True] * 3) == [True, False, True]
    assert len(s) == 3 and 3 * BYTES_PER_KEY <= s.nbytes <= 3 * BYTES_PER_KEY + 64


def test_a_replayed_batch_passes_again_and_claims_nothing_new() -> None:
    s = UniqueState(HOUR)
    first = judge_and_claim(s, [1, 2, 1], [10, 11, 12], [True] * 3)
    again = judge_and_claim(s, [1, 2, 1], [10, 11, 12], [True] * 3)
    assert first == again == [False, False, True] and len(s) == 2


def test_claims_expire_after_the_horizon() -> None:
    s = UniqueState(HOUR)
    judge_and_claim(s, ["x"], [0], [True], ts=0)
    assert judge_and_claim(s, ["x"], [1], [True], ts=HOUR // 2) == [True]
    judge_and_claim(s, ["y"], [2], [True], ts=2 * HOUR)
    assert s.expire() == 1  # x's bucket ended more than a horizon before the newest claim
    assert judge_and_claim(s, ["x"], [3], [True], ts=2 * HOUR) == [False]
    assert s.take_changes().tombstones == ("0/0",)


def test_changelog_chunks_restore_the_state() -> None:
    s = UniqueState(HOUR)
    for i in range(5):
        judge_and_claim(
            s,
            [f"k{j}" for j in range(i * 100, i * 100 + 120)],
            list(range(i * 200, i * 200 + 120)),
            [True] * 120,
            ts=i * 600_000,
        )
    changes = s.take_changes()
    chunks = [decode_chunk(c.key, encode_chunk(c)) for c in changes.chunks]
    assert all(not isinstance(c, str) for c in chunks)
    restored = UniqueState.restore(HOUR, chunks)  # type: ignore[arg-type]
    assert len(restored) == len(s) == 520
    probe, _ = stable_hash(pl.Series([f"k{j}" for j in range(0, 700, 7)]))
    assert np.array_equal(restored.claimed(probe), s.claimed(probe))
    assert isinstance(decode_chunk("0/0", b"junk"), str) and isinstance(decode_chunk("x", b""), str)


def test_a_short_horizon_on_todays_event_times_claims_expires_and_restores() -> None:
    """A 10 s horizon makes buckets of 416 ms: today's bucket numbers (~4.3e9) are past an int32. They were stored
    as one, and every batch of such a stream raised OverflowError (and was retried, then dead-lettered)."""
    now = 1_796_000_000_000  # 2026-12
    s = UniqueState(10_000)
    assert now // s.bucket_ms > np.iinfo(np.int32).max
    assert judge_and_claim(s, ["a", "b", "a"], [0, 1, 2], [True] * 3, ts=now) == [False, False, True]
    assert judge_and_claim(s, ["b", "c"], [3, 4], [True] * 2, ts=now + 5_000) == [True, False]
    chunks = [decode_chunk(c.key, encode_chunk(c)) for c in s.take_changes().chunks]
    restored = UniqueState.restore(10_000, chunks)  # type: ignore[arg-type]
    assert judge_and_claim(restored, ["a", "c", "d"], [5, 6, 7], [True] * 3, ts=now + 6_000) == [True, True, False]
    judge_and_claim(restored, ["e"], [8], [True], ts=now + 30_000)
    assert restored.expire() == 4  # a, b, c and d: their buckets ended more than a horizon before the newest claim
    assert judge_and_claim(restored, ["a"], [9], [True], ts=now + 30_000) == [False]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 6)), st.booleans()), min_size=1, max_size=40),
    st.lists(st.integers(1, 8), min_size=1),
)
def test_same_verdicts_however_the_stream_is_cut(rows: list[tuple], cuts: list[int]) -> None:
    s, got, i, k = UniqueState(HOUR), [], 0, 0
    while i < len(rows):
        part = rows[i : i + cuts[k % len(cuts)]]
        got += judge_and_claim(s, [v for v, _ in part], list(range(i, i + len(part))), [e for _, e in part])
        i, k = i + len(part), k + 1
    claimed, expect = set(), []
    for v, ok in rows:
        dup = v is not None and v in claimed
        expect.append(dup)
        if ok and not dup and v is not None:
            claimed.add(v)
    assert got == expect


def test_hashes_are_stable_and_integers_never_collide() -> None:
    # fixed values: a change of the hash function would orphan every checkpointed state
    assert stable_hash(pl.Series([1, 2]))[0].tolist() == mix64(np.array([1, 2], dtype=np.uint64)).tolist()
    assert stable_hash(pl.Series(["a", "abcdefghi"]))[0].tolist() == [5614789956411525169, 12597223274377310333]
    ints = np.arange(-500_000, 500_000)
    assert len(np.unique(stable_hash(pl.Series(ints))[0])) == len(ints)
    words = pl.Series([f"user-{i}" for i in range(200_000)])
    assert len(np.unique(stable_hash(words)[0])) == 200_000
    same = stable_hash(pl.Series(["abc", "abc\x00", "ab", "", None]))
    assert len(set(same[0][:4].tolist())) == 4 and same[1].tolist() == [False] * 4 + [True]
    assert stable_hash(pl.Series([0.0, -0.0]))[0].tolist()[0] == stable_hash(pl.Series([-0.0]))[0][0]


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 40), st.lists(st.text(st.characters(max_codepoint=127), max_size=40), min_size=1, max_size=20))
def test_values_of_one_length_hash_as_in_a_mixed_column(length: int, texts: list[str]) -> None:
    """The one-length fast path (ids, UUIDs) gives the hashes of the general path, so persisted claims
    match whatever mix of lengths a batch has."""
    same = [(t * (length // max(len(t), 1) + 1))[:length] if t else "x" * length for t in texts]
    alone, _ = stable_hash(pl.Series(same, dtype=pl.String))
    mixed, _ = stable_hash(pl.Series([*same, "a value of another length than the rest" + "!" * 41], dtype=pl.String))
    assert len({len(t.encode()) for t in same}) == 1  # ASCII of one length: the fast path
    assert np.array_equal(alone, mixed[:-1])
