"""Policies on ``freshness.seconds`` and ``lag.*`` act. Before, lint accepted them and the agent never fed them a
value: no summary stated a window's freshness, and nothing measured the workers' consumer lag."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from streams.contracts.loader import parse_contract
from streams.contracts.model import Contract
from streams.events import validate_event
from streams.events.window import window_summary
from streams.policies.agent import PolicyAgent
from streams.policies.lag import PartitionOffsets, TopicLag, consumer_lag
from streams.policies.runner import _Session
from streams.policies.telemetry import PolicyMetrics
from streams.settings import load_settings
from streams.windows.finalize import WindowVerdict
from streams.windows.partial import WindowKey

from .conftest import CONTRACT, POLICIES
from .summaries import T0, message
from .test_agent import EVENTS, decisions, settings

FEED_POLICIES = """\
          - name: stale-data
            when: {metric: freshness.seconds, above: 300}
            for: 2
            action: page
            resolve: {after: 1, below: 60}
          - name: workers-behind
            when: {metric: lag.records, above: 1000}
            for: 2
            resolve: {after: 1, below: 100}
          - name: waiting-too-long
            when: {metric: lag.seconds, above: 600}
"""
MINUTE = 60_000
T0_MS = int(T0.timestamp() * 1000)


@pytest.fixture
def contract() -> Contract:
    return parse_contract(CONTRACT.replace(POLICIES, FEED_POLICIES), path="feeds.yaml")


def verdict(contract: Contract, i: int, *, newest_ms: int | None, closed_ms: int | None) -> WindowVerdict:
    so = contract.schemas[0]
    start = T0_MS + i * MINUTE
    key = WindowKey(contract.id, contract.version, so.name, so.topic, start, start + MINUTE)
    return WindowVerdict(key, contract.sha256, 10, 10, 10, 0, 0, 0, 0, (), {0: ((0, 9),)},
                         newest_event_ms=newest_ms, closed_ms=closed_ms)  # fmt: skip


def test_stale_windows_page_and_a_fresh_one_resolves(contract: Contract) -> None:
    agent = PolicyAgent([contract], settings(), EVENTS)
    # minute i's newest record is 50 s into it; the window is judged 70 s + ages[i] after that
    ages = [10, 400, 500, 30]
    out = []
    for i, age in enumerate(ages):
        newest = T0_MS + i * MINUTE + 50_000
        v = verdict(contract, i, newest_ms=newest, closed_ms=newest + age * 1000)
        event = window_summary(contract, v, worker_id="w1")
        validate_event(event)
        out += agent.handle(message(event, EVENTS, i))
    assert decisions(out) == [("triggered", "stale-data"), ("resolved", "stale-data")]
    state = agent.book.states[f"{contract.id}#stale-data"]
    assert (state.triggered, state.resolved) == (1, 1)


def test_a_summary_without_freshness_is_no_value_not_a_fresh_window(contract: Contract) -> None:
    agent = PolicyAgent([contract], settings(), EVENTS)
    out = []
    for i, (newest, closed) in enumerate([(0, 400_000), (0, 400_000), (None, None), (0, 10_000)]):
        base = T0_MS + i * MINUTE
        v = verdict(contract, i, newest_ms=None if newest is None else base + newest,
                    closed_ms=None if closed is None else base + closed)  # fmt: skip
        out += agent.handle(message(window_summary(contract, v, worker_id="w1"), EVENTS, i))
    # opened on minute 1; minute 2 states no freshness (silence is not recovery); minute 3 is fresh: resolved
    assert decisions(out) == [("triggered", "stale-data"), ("resolved", "stale-data")]
    resolved = agent.book.states[f"{contract.id}#stale-data"]
    assert resolved.incident is None and resolved.resolved == 1


def test_consumer_lag_of_committed_and_end_offsets() -> None:
    now = 1_000_000
    lags = consumer_lag([
        PartitionOffsets("a", 0, start=0, end=500, committed=200, pending_ms=now - 90_000),
        PartitionOffsets("a", 1, start=100, end=400, committed=None, pending_ms=now - 30_000),  # never committed
        PartitionOffsets("a", 2, start=300, end=350, committed=120, pending_ms=now - 5_000),  # behind the log start
        PartitionOffsets("a", 3, start=0, end=70, committed=70),  # caught up: its record age is not asked
        PartitionOffsets("b", 0, start=0, end=10, committed=10),
        PartitionOffsets("c", 0, start=0, end=10, committed=4, pending_ms=None),  # its waiting record was not read
        PartitionOffsets("d", 0, start=0, end=10, committed=4, pending_ms=now + 5_000),  # a producer clock ahead
    ], now)  # fmt: skip
    assert lags == {
        "a": TopicLag("a", 300 + 300 + 50 + 0, 90.0, 4),
        "b": TopicLag("b", 0, 0.0, 1),
        "c": TopicLag("c", 6, None, 1),
        "d": TopicLag("d", 6, 0.0, 1),
    }


def test_lag_policies_trigger_on_intervals_and_resolve(contract: Contract) -> None:
    agent = PolicyAgent([contract], settings(), EVENTS)
    assert agent.lag_topics() == ["shop.payments.v1"]
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    out = []
    for i, (records, seconds) in enumerate([(5000, 700.0), (4000, 30.0), (50, None)]):
        a, b = start + timedelta(seconds=30 * i), start + timedelta(seconds=30 * (i + 1))
        out += agent.observe_lag({"shop.payments.v1": TopicLag("shop.payments.v1", records, seconds, 3)}, a, b)
    # interval 0: 700 s waiting; 1: 4000 behind twice running, 30 s waiting; 2: 50 behind (its age unknown)
    assert decisions(out) == [("triggered", "waiting-too-long"), ("triggered", "workers-behind"),
                              ("resolved", "waiting-too-long"), ("resolved", "workers-behind")]  # fmt: skip
    # another topic's lag concerns no policy of this contract; the window policies are not fed lag
    assert agent.observe_lag({"other": TopicLag("other", 10**6, 1e6, 1)}, start + timedelta(minutes=5),
                             start + timedelta(minutes=6)) == []  # fmt: skip
    stale = agent.book.states.get(f"{contract.id}#stale-data")
    assert stale is None or stale.last_end is None


def test_no_lag_policy_means_no_measurement() -> None:
    plain = parse_contract(CONTRACT, path="plain.yaml")
    assert PolicyAgent([plain], settings(), EVENTS).lag_topics() == []


def test_the_runner_measures_in_a_thread_and_skips_a_failed_measurement(
    contract: Contract, caplog: pytest.LogCaptureFixture
) -> None:
    workers = load_settings(app_id="workers", events_topic=EVENTS)
    session = _Session(workers, settings(lag_interval_s=30), [contract], PolicyMetrics())
    clock = [1_800_000_000.0]
    session.agent.now = lambda: clock[0]
    calls: list[tuple[str, list[str], int]] = []

    def probe(_settings: object, group: str, topics: list[str], *, now_ms: int) -> list[PartitionOffsets]:
        calls.append((group, topics, now_ms))
        if len(calls) == 1:
            raise ConnectionError("no broker")
        return [PartitionOffsets("shop.payments.v1", 0, 0, 5000, 1000, now_ms - 1000)]

    session.probe = probe

    async def steps() -> list[list[str]]:
        seen = []
        for _ in range(4):  # interval 1 fails, interval 2 measures 4000 records behind: for 2 needs a third
            seen.append(decisions(session.lag()))
            clock[0] += 30
            seen.append(decisions(session.lag()))  # starts a measurement: it runs in a thread, the loop goes on
            task = session._lag_task
            assert task is not None and not task.done()
            await asyncio.wait([task])
        return seen

    with caplog.at_level(logging.WARNING):
        seen = asyncio.run(steps())
    assert [c[:2] for c in calls] == [("workers", ["shop.payments.v1"])] * 4  # the 4th is under way at the end
    assert "consumer lag of group workers not measured, interval skipped: ConnectionError: no broker" in caplog.text
    assert [d for step in seen for d in step] == [("triggered", "workers-behind")]
    state = session.agent.book.states[f"{contract.id}#workers-behind"]
    assert state.last_end == datetime.fromtimestamp(1_800_000_000 + 90, UTC)  # [60, 90): intervals follow on
