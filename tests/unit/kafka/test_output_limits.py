"""Output topics' size limits: read at start, read again in the background when old, at once after a refusal."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.kafka import batches
from streams.kafka.outputs import LIMIT_TTL_S, OutputLimits
from streams.pipeline.binding import Binding
from streams.settings import Settings
from streams.testing.transport import InMemoryTransport

from .test_worker_inmemory import EVENTS, TOPIC, feed, running, worker_for


class SlowLimits:
    """A transport's ``max_message_bytes``: each read is counted and takes ``delay`` seconds (an admin round trip)."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay, self.values, self.reads = delay, dict[str, int](), list[str]()

    async def max_message_bytes(self, topic: str) -> int:
        self.reads.append(topic)
        await asyncio.sleep(self.delay)
        return self.values.get(topic, 1000)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_old_limit_is_read_again_in_the_background_while_batches_use_the_known_one() -> None:
    async def scenario() -> None:
        transport, clock = SlowLimits(), Clock()
        limits = OutputLimits(Settings(), transport, clock=clock)  # type: ignore[arg-type]
        assert await limits.limit("a") == 1000 and transport.reads == ["a"]  # unknown: read now
        transport.values["a"] = 2000
        clock.now += LIMIT_TTL_S + 1
        assert await limits.limit("a") == 1000  # old: the known value (not awaiting the read of 2000), a read started
        await asyncio.sleep(0)
        assert await limits.limit("a") == 1000 and transport.reads == ["a", "a"]  # one read at a time
        await asyncio.sleep(2 * transport.delay)
        assert await limits.limit("a") == 2000 and transport.reads == ["a", "a"]  # fresh again

    asyncio.run(scenario())


def test_after_a_refusal_the_next_batch_waits_for_fresh_limits() -> None:
    async def scenario() -> None:
        transport, clock = SlowLimits(), Clock()
        limits = OutputLimits(Settings(), transport, clock=clock)  # type: ignore[arg-type]
        await limits.prefetch(["a", "b", "a"])
        assert sorted(transport.reads) == ["a", "b"]
        clock.now += LIMIT_TTL_S + 1
        assert await limits.limit("a") == 1000  # a background read starts...
        transport.values["a"] = 500
        limits.refused(type("MessageSizeTooLargeError", (Exception,), {})())  # ...and a refusal drops it
        assert await limits.limit("a") == 500
        await asyncio.sleep(2 * transport.delay)
        assert await limits.limit("a") == 500  # the cancelled read did not put the old value back

    asyncio.run(scenario())


@pytest.mark.parametrize("mode", ["gate", "monitor"])
def test_the_worker_warms_its_bindings_and_reads_its_output_limits_before_the_first_batch(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[Any] = []
    warmed: list[str] = []

    class Counting(InMemoryTransport):
        async def max_message_bytes(self, topic: str) -> int:
            order.append(("limit", topic))
            return await super().max_message_bytes(topic)

    def warm_all(bindings: list[Binding]) -> None:
        warmed.extend(b.topic for b in bindings)
        order.append(("warm",))

    monkeypatch.setattr(batches, "warm_all", warm_all)

    async def scenario() -> None:
        transport = Counting(sources=[TOPIC], partitions={TOPIC: 1})
        feed(transport, 20, 0)
        worker = worker_for(transport, mode=mode, batch_events=False)
        process = worker._process

        async def spy(*args: Any, **kwargs: Any) -> Any:
            order.append(("batch",))
            return await process(*args, **kwargs)

        worker._process = spy  # type: ignore[method-assign]
        async with running(worker):
            await transport.wait_for(lambda: worker.committed.get(next(iter(worker.committed), None), 0) == 20)
        first_batch = order.index(("batch",))
        kinds = ("validated", "quarantine", "dlq") if mode == "gate" else ("quarantine", "dlq")
        before = {t for k, t in (x for x in order[:first_batch] if x[0] == "limit")}
        assert before == {f"{TOPIC}.{k}" for k in kinds} | {EVENTS}
        assert warmed == [TOPIC] and order.index(("warm",)) < first_batch

    asyncio.run(asyncio.wait_for(scenario(), 30.0))


def test_the_start_is_reported_before_an_assignment_that_comes_while_the_limits_are_read() -> None:
    """aiokafka joins the group in the background once subscribed: an assignment can arrive while the worker awaits
    its warm-up and the output limits; the lifecycle must still say "started" first (the demo waits for the
    assignment it reports after the start)."""
    from .test_worker_inmemory import Recorder

    class JoinsMeanwhile(InMemoryTransport):
        async def max_message_bytes(self, topic: str) -> int:
            await self._apply_rebalance()  # the group join completing during the read
            return await super().max_message_bytes(topic)

    async def scenario() -> None:
        transport = JoinsMeanwhile(sources=[TOPIC], partitions={TOPIC: 1})
        feed(transport, 5, 0)
        recorder = Recorder(transport)
        worker = worker_for(transport, observers=(recorder,))
        async with running(worker):
            await transport.wait_for(lambda: sum(worker.committed.values()) == 5)
        kinds = recorder.kinds()
        assert "assign" in kinds and kinds.index("start") < kinds.index("assign")

    asyncio.run(asyncio.wait_for(scenario(), 30.0))
