"""The join spread over 2–3 joiner processes by partition pair, with one merger: the same events as one joiner over
every partition (and as the independent computation), through a rebalance that moves a pair mid-stream (its state
restored from the committed state records, what was consumed and not committed replayed), the merger moving with
pair 0."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.performance.binding import join_spec
from streams.performance.merge import PairJoiner, PerformanceMerger
from streams.pipeline.records import Message, OutRecord
from streams.profiles.performance import PerformancePartial, score_units
from streams.settings import Settings
from tests.unit.performance.scenario import T0, WINDOW_MS, contract, expected, generate
from tests.unit.performance.test_joiner import Clock, all_settled, assert_equal, close, events, make_joiner, run

EVENTS, STATE, MERGE, JID = "events", "state", "merge", "j"


class Cluster:
    """Pair joiners owned by processes, the merger in the owner of pair 0; the state and merge topics as lists
    (what was committed); one transaction per pair per poll."""

    def __init__(self, pairs: int, owners: list[int], clock: Clock) -> None:
        self.spec = join_spec(contract(), Settings())
        self.clock, self.pairs, self.owners = clock, pairs, owners
        self.state: list[Message] = []
        self.merge: list[Message] = []
        self.out: list[OutRecord] = []
        self.joiners = {p: self._restore(p) for p in range(pairs)}
        self.merger = self._merger()
        self.merged_through = 0  # merge-topic records the merger has read

    def _restore(self, p: int) -> PairJoiner:
        joiner = PairJoiner(self.spec, joiner_id=JID, pair=p, merge_topic=MERGE, now=self.clock)
        joiner.restore(self.state)
        joiner.assign_pair()
        return joiner

    def _merger(self) -> PerformanceMerger:
        merger = PerformanceMerger(self.spec, JID, self.pairs, EVENTS, MERGE)
        merger.feed(self.merge)
        self.merged_through = len(self.merge)
        return merger

    def commit(self, p: int, records: list[OutRecord]) -> None:
        for r in records + self.joiners[p].state_records(STATE):
            topic = {STATE: self.state, MERGE: self.merge}.get(r.topic)
            if topic is None:
                self.out.append(r)
            else:
                topic.append(Message(r.topic, 0, len(topic), r.value, r.key))

    def poll(self, batch: list[Message]) -> None:
        outs: dict[int, list[OutRecord]] = {p: [] for p in range(self.pairs)}
        for m in batch:
            outs[m.partition] += self.joiners[m.partition].handle(m)
        for p in range(self.pairs):
            outs[p] += self.joiners[p].tick()
        # the merger (pair 0's owner) reads what was committed before this poll, publishes in pair 0's transaction
        self.merger.feed(self.merge[self.merged_through :])
        self.merged_through = len(self.merge)
        outs[0] += self.merger.due()
        for p in range(self.pairs):
            self.commit(p, outs[p])

    def move(self, pair: int, to: int, consumed: list[Message], seen: list[Message]) -> None:
        """Pair ``pair`` to process ``to``: the old owner consumed ``consumed`` and died before committing; the new
        one restores the pair (and the merger, for pair 0) and re-reads the pair's partitions from the start of
        ``seen`` (offsets below the restored ones skipped)."""
        for m in consumed:
            if m.partition == pair:
                self.joiners[pair].handle(m)  # lost with the old owner
        self.owners[pair] = to
        self.joiners[pair] = self._restore(pair)
        if pair == 0:
            self.merger = self._merger()
        for m in seen:
            if m.partition == pair:
                self.commit(pair, self.joiners[pair].handle(m))

    def close(self) -> None:
        self.clock.t += 3_600  # every partition idle
        self.poll([])
        self.poll([])  # the merger reads the idle marks committed by the previous poll


def single(data: Any, partitions: int, batch: int) -> list[OutRecord]:
    clock = Clock()
    joiner = make_joiner(clock, partitions)
    return run(data.messages, joiner, clock, batch=batch) + close(joiner, clock)


def scale_out(data: Any, partitions: int, processes: int, batch: int, move: tuple[int, int, float] | None) -> Cluster:
    cluster = Cluster(partitions, [p % processes for p in range(partitions)], Clock())
    messages = data.messages
    cut = None if move is None else int(move[2] * len(messages)) // batch * batch
    for i in range(0, len(messages), batch):
        if i == cut and move is not None:
            pair, to, _ = move
            cluster.move(pair, to % processes, messages[i : i + batch], messages[:i])
        cluster.poll(messages[i : i + batch])
    cluster.close()
    return cluster


def same_events(got: list[OutRecord], want: list[OutRecord]) -> dict[tuple[int, str], dict[str, Any]]:
    g, w = events(got), events(want)  # (events() fails on two events of one window and version)
    assert sorted(g) == sorted(w) and len(g) > 0
    for key in w:
        assert_equal(g[key], w[key])
    assert_versions_listed(g)
    return g


def assert_versions_listed(published: dict[tuple[int, str], dict[str, Any]]) -> None:
    """Each event names every version published for its window (``window_versions``), all of them published."""
    by_start: dict[int, set[str]] = {}
    for start, version in published:
        by_start.setdefault(start, set()).add(version)
    listed = {key: d["window_versions"] for key, d in published.items()}
    assert listed == {(start, version): sorted(by_start[start]) for start, version in published}


MOVES = st.none() | st.tuples(st.integers(0, 3), st.integers(0, 2), st.floats(0, 1))  # (pair, to process, when)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), partitions=st.integers(2, 4), processes=st.integers(2, 3),
       batch=st.integers(1, 40), move=MOVES)  # fmt: skip
def test_split_over_joiners_equals_one_joiner(
    seed: int, partitions: int, processes: int, batch: int, move: tuple[int, int, float] | None
) -> None:
    data = generate(seed, n=120, partitions=partitions, orphans=5)
    if move is not None:
        move = (move[0] % partitions, move[1], move[2])
    cluster = scale_out(data, partitions, processes, batch, move)
    got = same_events(cluster.out, single(data, partitions, batch))
    want = expected(data)
    assert sorted(got) == sorted(want)
    for key, w in want.items():
        assert_equal(got[key], w)
    assert not cluster.merger.shares and cluster.merger.after_close == 0
    assert all(not j.partials and all_settled(j) for j in cluster.joiners.values())


def test_rebalance_moves_pair_zero_and_the_merger_mid_stream() -> None:
    """A fixed case of the above, with the numbers checked: the move lands after events were published."""
    data = generate(7, n=300, partitions=4, span_s=1800)
    batch = 10
    cluster = Cluster(4, [0, 1, 0, 1], Clock())
    cut = len(data.messages) * 6 // 10 // batch * batch
    for i in range(0, len(data.messages), batch):
        if i == cut:
            published = len(cluster.out)
            cluster.move(0, 1, data.messages[i : i + batch], data.messages[:i])
        cluster.poll(data.messages[i : i + batch])
    cluster.close()
    assert 0 < published < len(expected(data))  # events before and after the move
    same_events(cluster.out, single(data, 4, batch))


def test_the_merger_waits_for_every_pair() -> None:
    """Pair 1 holds a window back until its mark passes it; a pair never reported holds everything back."""
    spec = join_spec(contract(), Settings())
    merger = PerformanceMerger(spec, JID, 2, EVENTS, MERGE)
    end = T0 + WINDOW_MS + spec.horizon_ms

    def rec(key: list[Any], value: Any) -> Message:
        return Message(MERGE, 0, 0, orjson.dumps(value), orjson.dumps([JID, *key]))

    bins = spec.prediction.score_bins
    sums = (0,) * (bins - 1) + (score_units(0.97),)
    share = PerformancePartial(1, 0, 0, 0, (0,) * (bins - 1) + (1,), (0,) * bins, sums, 1, 30.0, 30.0).as_dict()
    merger.feed([rec(["share", T0, "A", 0], share), rec(["mark", 0], {"final_ms": end, "idle": False})])
    assert merger.due() == []  # pair 1 never reported
    merger.feed([rec(["mark", 1], {"final_ms": end - 1, "idle": False})])
    assert merger.due() == []  # pair 1 not past the window yet
    merger.feed([rec(["share", T0, "A", 1], share), rec(["mark", 1], {"final_ms": end, "idle": False})])
    out = merger.due()
    got = events([r for r in out if r.topic == EVENTS])
    assert list(got) == [(T0, "A")] and got[(T0, "A")]["confusion"]["tp"] == 2
    assert {orjson.loads(r.key)[1] for r in out if r.topic == MERGE} == {"closed", "share"}
    # a share of the published window arriving later (its pair had been idle) is late, not a second event
    merger.feed([rec(["share", T0, "A", 1], share)])
    late = merger.due()
    assert merger.after_close == 1 and [(r.value, orjson.loads(r.key)) for r in late] == [
        (None, [JID, "share", T0, "A", 1])
    ]
    assert merger.due() == []  # tombstoned once


def test_an_idle_pair_does_not_hold_the_stream_back() -> None:
    spec = join_spec(contract(), Settings())
    merger = PerformanceMerger(spec, JID, 2, EVENTS, MERGE)
    end = T0 + WINDOW_MS + spec.horizon_ms
    bins = spec.prediction.score_bins
    sums = (score_units(0.01),) + (0,) * (bins - 1)
    share = PerformancePartial(0, 0, 1, 0, (0,) * bins, (1,) + (0,) * (bins - 1), sums, 1, 5.0, 5.0).as_dict()
    records = [(["share", T0, "B", 0], share), (["mark", 0], {"final_ms": end, "idle": False}),
               (["mark", 1], {"final_ms": None, "idle": True})]  # fmt: skip
    merger.feed([Message(MERGE, 0, i, orjson.dumps(v), orjson.dumps([JID, *k])) for i, (k, v) in enumerate(records)])
    assert list(events([r for r in merger.due() if r.topic == EVENTS])) == [(T0, "B")]
