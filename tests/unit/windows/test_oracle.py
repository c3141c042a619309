"""The window verdict equals validating the window's records as one frame, however the stream is cut.

Records are spread over partitions and cut into batches arbitrarily (hypothesis); each
batch is validated by the engine, turned into partials and merged. Every window's
checks must equal ``Contract.validate`` on the window's records as one frame (the
oracle), for every rule judged on the window.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from streams.windows.finalize import finalize
from streams.windows.partial import merge_all
from streams.windows.plan import Evaluation, RuleKind

from .helpers import T0, WINDOW_MS, Stream, frame, plan

record = st.tuples(
    st.integers(0, 2),  # partition
    st.one_of(st.none(), st.integers(0, 12)),  # id
    st.integers(0, 45_000),  # event time offset (ms)
    st.one_of(st.none(), st.floats(-10, 100, allow_nan=False)),
    st.sampled_from(["DE", "FR", "US", "XX", None]),
    st.sampled_from(["a", "b", "c", None]),
)


def run(records: list[tuple], cuts: list[int]) -> Stream:
    p = plan()
    stream = Stream.new(p)
    next_offset = {0: 0, 1: 0, 2: 0}
    offsets = []
    for part, *_ in records:
        offsets.append(next_offset[part])
        next_offset[part] += 1
    i = 0
    k = 0
    while i < len(records):
        size = cuts[k % len(cuts)]
        k += 1
        chunk = records[i : i + size]
        df = frame(
            [r[1] for r in chunk],
            [T0 + r[2] for r in chunk],
            [r[3] for r in chunk],
            [r[4] for r in chunk],
            [r[5] for r in chunk],
        )
        stream.batch(df, np.array([r[0] for r in chunk]), np.array(offsets[i : i + size]), now_ms=T0 + 50_000)
        i += size
    return stream


def reference_uniqueness(stream: Stream) -> dict[int, set[int]]:
    """Row positions (over the whole run) that fail stream uniqueness, by a plain Python loop."""
    claimed: dict[tuple[int, int], int] = {}
    fails: set[int] = set()
    pos = 0
    for df, marks, _valid, _fails in stream.marks:
        report = stream.plan.contract.validate(df)
        gating = stream.plan.gating
        for j, (ident, names) in enumerate(
            zip(df.get_column("id").to_list(), report.violations.to_list(), strict=True)
        ):
            part = int(marks.partitions[j])
            ok = not (set(names) & gating)
            if ident is not None and (ident, part) in claimed:
                fails.add(pos + j)
            elif ident is not None and ok:
                claimed[(ident, part)] = int(marks.offsets[j])
        pos += df.height
    return {0: fails}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=(Phase.explicit, Phase.reuse, Phase.generate),  # slow examples: report as found
)
@given(st.lists(record, min_size=1, max_size=50), st.lists(st.integers(1, 9), min_size=1, max_size=6))
def test_window_checks_equal_the_window_validated_as_one_frame(records: list[tuple], cuts: list[int]) -> None:
    stream = run(records, cuts)
    p = stream.plan
    whole = pl.concat([df for df, *_ in stream.marks])
    late = np.concatenate([m.late for _, m, _, _ in stream.marks])
    own = np.concatenate([m.event_ms for _, m, _, _ in stream.marks])
    starts = own - own % WINDOW_MS
    valid = np.concatenate([v for *_, v, _ in stream.marks])
    unique_fail = np.concatenate([f["id:unique"] for *_, f in stream.marks])
    assert set(np.flatnonzero(unique_fail)) == reference_uniqueness(stream)[0]
    assert stream.windows, "every run has at least one window"
    for key, partial in stream.windows.items():
        rows = np.flatnonzero((starts == key.start_ms) & ~late)
        verdict = finalize(p, partial)
        assert verdict.rows == len(rows) and verdict.records == len(rows)
        assert verdict.valid == int(valid[rows].sum())
        oracle = p.contract.validate(whole[rows]) if len(rows) else None
        for rp in p.rules:
            check = verdict.check(rp.rule.name)
            if rp.kind is RuleKind.STREAM:
                assert check.evaluation is Evaluation.STREAM
                assert check.result.failures == int(unique_fail[rows].sum())
                continue
            if rp.kind is RuleKind.SQL_BATCHES:
                assert check.evaluation is Evaluation.BATCHES
                continue
            assert check.evaluation is Evaluation.WINDOW
            if oracle is None:  # a window holding only late records
                continue
            expected = oracle.check(rp.rule.name)
            got = check.result
            assert (got.failures, got.passed, got.error) == (expected.failures, expected.passed, expected.error), (
                rp.rule.name
            )
            if expected.value is None:
                assert got.value is None
            else:
                assert got.value == pytest.approx(expected.value, rel=1e-9, abs=1e-9), rp.rule.name
            assert got.failure_rate == pytest.approx(expected.failure_rate)
    # late records are counted once, in some window, and in no frame
    assert sum(w.late for w in stream.windows.values()) == int(late.sum())


@settings(max_examples=40, deadline=None)
@given(st.lists(record, min_size=2, max_size=40), st.lists(st.integers(1, 7), min_size=1, max_size=4), st.randoms())
def test_merge_is_associative_and_commutative(records: list[tuple], cuts: list[int], rnd: random.Random) -> None:
    stream = Stream.new(plan())
    parts: dict = {}
    # the batch partials, collected before they were absorbed
    original = stream.batch

    def collect(*args, **kwargs):  # type: ignore[no-untyped-def]
        out = original(*args, **kwargs)
        for k, v in out.items():
            parts.setdefault(k, []).append(v)
        return out

    stream.batch = collect  # type: ignore[method-assign]
    run_into(stream, records, cuts)
    for key, pieces in parts.items():
        shuffled = pieces[:]
        rnd.shuffle(shuffled)
        left = merge_all(pieces)
        right = merge_all(shuffled)
        tree = _tree(shuffled, rnd)
        assert left is not None and right is not None
        for other in (right, tree, stream.windows[key]):
            assert left.same(replace(other, aggregates=left.aggregates))
            assert _aggregates_match(left.aggregates, other.aggregates)


def _aggregates_match(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """SQL partial aggregates: counts, minima, maxima and integer sums merge exactly; a floating-point sum to
    rounding, since the order of its additions follows the merge order (as ``streams.windows.sql`` documents).
    Seen: 14.554775918196766 merged one way, ...764 another."""
    if a.keys() != b.keys():
        return False
    for name, (kinds, values) in a.items():
        other_kinds, other_values = b[name]
        if kinds != other_kinds or len(values) != len(other_values):
            return False
        for x, y in zip(values, other_values, strict=True):
            if isinstance(x, float) or isinstance(y, float):
                if x is None or y is None or x != pytest.approx(y, rel=1e-12, abs=1e-12):
                    return False
            elif x != y:
                return False
    return True


def _tree(pieces: list, rnd: random.Random):  # type: ignore[no-untyped-def]
    from streams.windows.partial import merge

    if len(pieces) == 1:
        return pieces[0]
    cut = rnd.randint(1, len(pieces) - 1)
    return merge(_tree(pieces[:cut], rnd), _tree(pieces[cut:], rnd))


def run_into(stream: Stream, records: list[tuple], cuts: list[int]) -> None:
    offsets, nxt = [], {0: 0, 1: 0, 2: 0}
    for part, *_ in records:
        offsets.append(nxt[part])
        nxt[part] += 1
    i = k = 0
    while i < len(records):
        size = cuts[k % len(cuts)]
        k += 1
        chunk = records[i : i + size]
        df = frame(
            [r[1] for r in chunk],
            [T0 + r[2] for r in chunk],
            [r[3] for r in chunk],
            [r[4] for r in chunk],
            [r[5] for r in chunk],
        )
        stream.batch(df, np.array([r[0] for r in chunk]), np.array(offsets[i : i + size]), now_ms=T0 + 50_000)
        i += size
