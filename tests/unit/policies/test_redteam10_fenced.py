"""Red team 10: a policy agent whose producer is fenced. Another agent started with its agent id fenced it: it stops
with a :class:`SettingsError` (before, it started a new session, fenced the other back, and the two took turns for
good: ``tests/integration/kafka/test_redteam10_agent.py`` on the real broker). A transaction open longer than its
timeout may have been aborted by the coordinator for that (a long broker outage): that one is a Kafka error as
before, and the session is rebuilt."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka.errors import ProducerFenced

from streams.contracts.model import Contract
from streams.errors import SettingsError
from streams.pipeline.records import OutRecord
from streams.policies import runner
from streams.policies.config import PolicySettings
from streams.settings import Settings


class FencedProducer:
    def __init__(self, clock: list[float], open_s: float) -> None:
        self.clock, self.open_s = clock, open_s

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield
        self.clock[0] += self.open_s  # how long the transaction stayed open before the commit was refused
        raise ProducerFenced()

    async def send(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.mark.parametrize(("open_s", "raised"), [(0.2, SettingsError), (61.0, ProducerFenced)])
def test_a_fenced_agent_stops_unless_its_transaction_outlived_the_timeout(
    contract: Contract, open_s: float, raised: type[Exception]
) -> None:
    clock = [1000.0]
    session = runner._Session(Settings(), PolicySettings(), [contract], runner.PolicyMetrics())
    session.monotonic = lambda: clock[0]
    session.producer = FencedProducer(clock, open_s)
    with pytest.raises(raised) as info:
        asyncio.run(session.produce([OutRecord("dq.events", b"{}", b"k")]))
    if raised is SettingsError:
        assert "was fenced: another agent with" in str(info.value) and "STREAMS_POLICY_AGENT_ID" in str(info.value)
