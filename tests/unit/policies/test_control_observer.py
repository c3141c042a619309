"""The worker's reading of the quarantine control topic never gives up, and says where it stands.

A fake consumer over an in-memory topic stands for aiokafka; ``sleep`` and ``clock`` are injected,
so nothing here depends on timing: the tests step the event loop until a condition holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from streams.observability import Health
from streams.policies.control import ControlObserver, ControlState, Engaged, control_record

TOPIC = "dq.policy-control.v1"


@dataclass
class Rec:
    key: bytes | None
    value: bytes | None


@dataclass
class Broker:
    """The control topic: ``None`` while it does not exist; records per partition."""

    parts: dict[int, list[Rec]] | None = None
    stuck: bool = False  # fetches return nothing (a partition whose leader does not answer)
    fail_fetch: int = 0  # the next n fetches raise

    def cluster(self) -> Any:
        parts = None if self.parts is None else set(self.parts)
        return type("Cluster", (), {"partitions_for_topic": lambda _self, _t: parts})()


@dataclass
class FakeConsumer:
    broker: Broker
    positions: dict[TopicPartition, int] = field(default_factory=dict)
    stopped: bool = False

    def __post_init__(self) -> None:
        async def fetch_all_metadata() -> Any:
            return self.broker.cluster()

        self._client = type("Client", (), {"fetch_all_metadata": staticmethod(fetch_all_metadata)})()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    def assign(self, tps: list[TopicPartition]) -> None:
        self.positions = dict.fromkeys(tps, 0)  # aiokafka forgets positions on assign

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self.positions[tp] = 0

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        assert self.broker.parts is not None
        return {tp: len(self.broker.parts[tp.partition]) for tp in tps}

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Rec]]:
        await asyncio.sleep(0)
        if self.broker.fail_fetch:
            self.broker.fail_fetch -= 1
            raise RuntimeError("TopicAuthorizationFailedError")
        if self.broker.stuck or self.broker.parts is None:
            return {}
        out = {}
        for tp, pos in self.positions.items():
            records = self.broker.parts[tp.partition][pos:]
            if records:
                out[tp] = records
                self.positions[tp] = pos + len(records)
        return out


@dataclass
class Harness:
    broker: Broker = field(default_factory=Broker)
    sleeps: list[float] = field(default_factory=list)
    now: list[float] = field(default_factory=lambda: [0.0])
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    health: Health = field(default_factory=Health)
    engaged: Engaged = field(default_factory=Engaged)

    def observer(self) -> ControlObserver:
        async def sleep(delay: float) -> None:
            self.sleeps.append(delay)
            await asyncio.sleep(0)

        obs = ControlObserver(
            lambda: FakeConsumer(self.broker),
            TOPIC,
            self.engaged,
            catch_up_s=0.0,
            sleep=sleep,
            clock=lambda: self.now[0],
            registry=self.registry,
            refresh_s=60.0,
        )
        obs.on_health(self.health)
        return obs

    def following(self) -> float | None:
        return self.registry.get_sample_value("qstreams_policy_control_following", {"topic": TOPIC})


def engage(policy: str = "window-failing", *, on: bool = True) -> Rec:
    r = control_record(TOPIC, "shop.payments", "payments", policy, engaged=on, incident="ab" * 16, since="x")
    return Rec(r.key, r.value)


async def until(cond: Callable[[], bool], steps: int = 2000) -> None:
    for _ in range(steps):
        if cond():
            return
        await asyncio.sleep(0)


def test_a_control_topic_missing_at_start_is_read_once_it_exists(caplog: pytest.LogCaptureFixture) -> None:
    h = Harness()

    async def scenario() -> None:
        obs = h.observer()
        await obs.on_start(None)  # type: ignore[arg-type]
        await until(lambda: len(h.sleeps) >= 8)
        assert obs.state is ControlState.UNREADABLE
        assert "does not exist" in obs.reason
        assert h.sleeps[:8] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]  # 1 s doubling to 30 s
        assert h.following() == 0.0
        status, body = h.health.report()
        assert body["components"]["policy_control"]["state"] == "unreadable"
        assert body["components"]["policy_control"]["enforced"] is False
        assert status == 200  # no binding here: the component itself does not fail the check (availability)

        h.broker.parts = {0: [engage()]}  # the agent creates the topic and opens an incident
        await until(lambda: obs.state is ControlState.FOLLOWING)
        assert obs.state is ControlState.FOLLOWING
        assert h.engaged.policies("shop.payments", "payments") == ["window-failing"]
        assert h.following() == 1.0
        assert h.health.components["policy_control"]["enforced"] is True
        await obs.on_stopping()

    with caplog.at_level(logging.INFO, logger="streams.policies.control"):
        asyncio.run(scenario())
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and "cannot read" in r.getMessage()]
    assert len(errors) == 1  # once per state change, not per retry (8+ retries above)


def test_partitions_added_to_the_control_topic_later_are_read() -> None:
    h = Harness(broker=Broker(parts={0: [engage("a")]}))

    async def scenario() -> None:
        obs = h.observer()
        await obs.on_start(None)  # type: ignore[arg-type]
        await until(lambda: obs.state is ControlState.FOLLOWING)
        assert h.engaged.policies("shop.payments", "payments") == ["a"]
        assert h.broker.parts is not None
        h.broker.parts[1] = [engage("b")]
        h.now[0] = 61.0  # past the refresh
        await until(lambda: len(h.engaged.policies("shop.payments", "payments")) == 2)
        assert h.engaged.policies("shop.payments", "payments") == ["a", "b"]
        h.broker.parts[0].append(engage("a", on=False))  # partition 0 keeps its position (not read again)
        await until(lambda: h.engaged.policies("shop.payments", "payments") == ["b"])
        assert h.engaged.policies("shop.payments", "payments") == ["b"]
        await obs.on_stopping()

    asyncio.run(scenario())


def test_a_worker_not_caught_up_says_so_and_keeps_reading() -> None:
    h = Harness(broker=Broker(parts={0: [engage()]}, stuck=True))

    async def scenario() -> None:
        obs = h.observer()
        await obs.on_start(None)  # type: ignore[arg-type]  # returns after catch_up_s (0 here)
        await until(lambda: obs.state is ControlState.CATCHING_UP)
        assert obs.state is ControlState.CATCHING_UP
        assert h.following() == 0.0
        assert h.health.components["policy_control"]["enforced"] is False
        h.broker.stuck = False
        await until(lambda: obs.state is ControlState.FOLLOWING)
        assert h.engaged.policies("shop.payments", "payments") == ["window-failing"]
        await obs.on_stopping()

    asyncio.run(scenario())


def test_a_failing_fetch_while_following_is_retried_and_the_backoff_starts_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness(broker=Broker(parts={0: []}))

    async def scenario() -> None:
        obs = h.observer()
        await obs.on_start(None)  # type: ignore[arg-type]
        await until(lambda: obs.state is ControlState.FOLLOWING)
        h.broker.fail_fetch = 3  # unauthorized for three fetches
        await until(lambda: len(h.sleeps) >= 1)
        assert obs.state is ControlState.UNREADABLE
        assert "TopicAuthorizationFailedError" in h.health.components["policy_control"]["reason"]
        h.broker.parts = {0: [engage()]}  # meanwhile an incident opens
        await until(lambda: obs.state is ControlState.FOLLOWING and len(h.sleeps) >= 3)
        assert h.sleeps[:3] == [1.0, 2.0, 4.0]
        assert h.engaged.policies("shop.payments", "payments") == ["window-failing"]
        h.broker.fail_fetch = 1
        await until(lambda: len(h.sleeps) >= 4)
        assert h.sleeps[3] == 1.0  # it had caught up again: the backoff starts over
        await obs.on_stopping()

    with caplog.at_level(logging.INFO, logger="streams.policies.control"):
        asyncio.run(scenario())
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and "cannot read" in r.getMessage()]
    assert len(errors) == 2  # two outages, three failures in the first: one line each


def test_a_fresh_read_replaces_quarantines_whose_release_was_compacted_away() -> None:
    h = Harness(broker=Broker(parts={0: [engage()]}))

    async def scenario() -> None:
        obs = h.observer()
        await obs.on_start(None)  # type: ignore[arg-type]
        await until(lambda: obs.state is ControlState.FOLLOWING)
        assert h.engaged.policies("shop.payments", "payments") == ["window-failing"]
        h.broker.fail_fetch = 1
        h.broker.parts = {0: []}  # released while unreadable, and the tombstone compacted away
        await until(lambda: len(h.sleeps) >= 1 and obs.state is ControlState.FOLLOWING)
        assert obs.state is ControlState.FOLLOWING
        assert h.engaged.policies("shop.payments", "payments") == []
        await obs.on_stopping()

    asyncio.run(scenario())


def test_health_shows_components_without_judging_them() -> None:
    health = Health()
    health.components["policy_control"] = {"state": "unreadable", "enforced": False}
    status, body = health.report()
    assert status == 200
    assert body["components"] == {"policy_control": {"state": "unreadable", "enforced": False}}
