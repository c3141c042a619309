"""The labels join against an independent computation: out-of-order labels, labels before their prediction,
labels past the horizon, duplicates, orphans, a crash and restore mid-stream, late records, an accuracy drop."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.events.codec import event_data, from_kafka, validate_event
from streams.performance.binding import join_spec
from streams.performance.joiner import PerformanceJoiner
from streams.pipeline.records import Message, OutRecord
from streams.settings import Settings
from tests.unit.performance.scenario import LABELS, PREDICTIONS, T0, Data, contract, expected, generate

NOW = (T0 + 3_600_000) / 1000  # processing time while records flow (no partition idles)
EVENTS, STATE = "events", "state"


class Clock:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> float:
        return self.t


def make_joiner(clock: Clock, partitions: int = 2) -> PerformanceJoiner:
    spec = join_spec(contract(), Settings())
    joiner = PerformanceJoiner(spec, joiner_id="j1", events_topic=EVENTS, now=clock)
    joiner.assign({PREDICTIONS: range(partitions), LABELS: range(partitions)})
    return joiner


def run(messages: list[Message], joiner: PerformanceJoiner, clock: Clock, state: list[Message] | None = None,
        batch: int = 17) -> list[OutRecord]:  # fmt: skip
    """Feed ``messages`` in polls of ``batch``; each poll's state records appended to ``state`` (the topic)."""
    out: list[OutRecord] = []
    for i in range(0, len(messages), batch):
        for m in messages[i : i + batch]:
            out += joiner.handle(m)
        out += joiner.tick()
        if state is not None:
            commit(joiner, state)
    return out


def commit(joiner: PerformanceJoiner, state: list[Message]) -> None:
    for r in joiner.state_records(STATE):
        state.append(Message(STATE, 0, len(state), r.value, r.key))


def close(joiner: PerformanceJoiner, clock: Clock) -> list[OutRecord]:
    clock.t += 3_600  # every partition idle
    return joiner.tick()


def events(records: list[OutRecord]) -> dict[tuple[int, str], dict[str, Any]]:
    out = {}
    for r in records:
        e = from_kafka(r.key, r.value, r.headers)
        validate_event(e)
        d = event_data(e)
        start = round(datetime.fromisoformat(d["window"]["start"].replace("Z", "+00:00")).timestamp() * 1000)
        key = (start, d["model_version"])
        assert key not in out, f"two events for {key}"
        out[key] = d
    return out


def assert_equal(got: dict[str, Any], want: dict[str, Any]) -> None:
    for k in ("count", "confusion", "unmatched_predictions", "orphan_labels"):
        assert got[k] == want[k], k
    for k in ("accuracy", "precision", "recall", "calibration_error"):
        assert (got[k] is None and want[k] is None) or math.isclose(got[k], want[k], abs_tol=1e-9), k
    # scores (k + 0.5) / 100 are one per score bin: the histogram AUC is the exact Mann–Whitney AUC
    assert (got["roc_auc"] is None and want["roc_auc"] is None) or math.isclose(got["roc_auc"], want["roc_auc"],
                                                                                  abs_tol=1e-12)  # fmt: skip
    assert got["label_delay"]["count"] == want["label_delay"]["count"]
    gd, wd = got["label_delay"], want["label_delay"]
    assert (gd["mean_seconds"] is None) == (wd["mean_seconds"] is None)
    assert (gd["max_seconds"] is None) == (wd["max_seconds"] is None)
    if wd["mean_seconds"] is not None:
        assert math.isclose(gd["mean_seconds"], wd["mean_seconds"], abs_tol=1e-9)
        assert math.isclose(gd["max_seconds"], wd["max_seconds"], abs_tol=1e-9)


def check_against_independent(data: Data, out: list[OutRecord]) -> dict[tuple[int, str], dict[str, Any]]:
    got, want = events(out), expected(data)
    assert sorted(got) == sorted(want)
    for key, w in want.items():
        assert_equal(got[key], w)
    return got


def test_join_equals_the_independent_computation() -> None:
    data = generate(seed=1)
    clock = Clock()
    joiner = make_joiner(clock)
    out = run(data.messages, joiner, clock) + close(joiner, clock)
    got = check_against_independent(data, out)
    # the scenario exercises what it claims: duplicates, orphans, labels past the horizon, labels before predictions
    assert joiner.counters.counts["duplicate"] > 0 and joiner.counters.counts["late"] == 0
    assert sum(d["orphan_labels"] for d in got.values()) >= 15
    assert sum(d["unmatched_predictions"] for d in got.values()) > 0
    assert sum(d["count"] for d in got.values()) == joiner.counters.counts["matched"] > 150
    arrival = {(m.topic, orjson_pid(m)): i for i, m in reversed(list(enumerate(data.messages)))}
    assert any(arrival[(LABELS, pid)] < arrival[(PREDICTIONS, pid)] for pid, *_ in data.labels
               if (PREDICTIONS, pid) in arrival)  # fmt: skip
    assert not joiner.partials and all_settled(joiner)


def all_settled(joiner: PerformanceJoiner) -> bool:
    """Every id left is settled, and kept only while a record within the horizon of it could still be on time."""
    assert joiner.final_ms is not None
    return all((e.pred is None or e.pred_done) and (e.label is None or e.label_done)
               and joiner._until(e) > joiner.final_ms for e in joiner.entries.values())  # fmt: skip


def orjson_pid(m: Message) -> str:
    return (m.key or b"").decode()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 60), partitions=st.integers(1, 3))
def test_join_any_data_any_polls(seed: int, batch: int, partitions: int) -> None:
    data = generate(seed, n=120, partitions=partitions, orphans=5)
    clock = Clock()
    joiner = make_joiner(clock, partitions)
    check_against_independent(data, run(data.messages, joiner, clock, batch=batch) + close(joiner, clock))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), cut=st.floats(0.0, 1.0), batch=st.integers(1, 40))
def test_restore_mid_stream_gives_the_uninterrupted_events(seed: int, cut: float, batch: int) -> None:
    data = generate(seed, n=120, orphans=5)
    clock = Clock()
    uninterrupted_joiner = make_joiner(clock)
    uninterrupted = run(data.messages, uninterrupted_joiner, clock, batch=batch) + close(uninterrupted_joiner, clock)
    # a crash after the poll holding message k: what was committed (events + state) survives, the rest is replayed
    k = int(cut * len(data.messages)) // batch * batch
    clock = Clock()
    state: list[Message] = []
    first = make_joiner(clock)
    before = run(data.messages[:k], first, clock, state, batch=batch)
    if k < len(data.messages):
        first.handle(data.messages[k])  # consumed, never committed: lost with the process
    second = make_joiner(clock)
    second.restore(state)
    after = run(data.messages, second, clock, batch=batch) + close(second, clock)  # from the start: offsets skip
    assert len(uninterrupted) > 0
    assert [(r.key, r.value) for r in before + after] == [(r.key, r.value) for r in uninterrupted]
