"""Batches fill on slow feeds (``streams.kafka.filling.fill``): latency bound, size bounds, repositioned partitions."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from streams.kafka.filling import fill
from streams.kafka.observers import WorkerObserver
from streams.kafka.transport import TopicPartition
from streams.pipeline.records import Message
from streams.testing.transport import InMemoryTransport

TOPIC = "slow"
TP0, TP1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


@dataclass
class Feed:
    """A fake ``getmany`` on a fake clock: records arrive every ``gap`` seconds on the partitions in turn.

    A call returns what arrived up to now; if nothing did, it waits (advances the clock) until the next
    arrival within its timeout."""

    gap: float
    partitions: int = 1
    now: float = 0.0
    next_offset: int = 0  # of the next record to arrive (over all partitions)
    calls: int = 0

    def clock(self) -> float:
        return self.now

    def _arrived(self) -> int:
        return int(self.now / self.gap) + 1  # records 0.. have arrived by now (one at t=0)

    async def fetch(self, max_records: int, timeout_ms: int) -> dict[TopicPartition, list[Message]]:
        self.calls += 1
        if self._arrived() <= self.next_offset:
            arrival = self.next_offset * self.gap
            if arrival > self.now + timeout_ms / 1000:
                self.now += timeout_ms / 1000
                return {}
            self.now = arrival
        out: dict[TopicPartition, list[Message]] = {}
        while self.next_offset < self._arrived() and max_records > 0:
            i = self.next_offset
            tp = TopicPartition(TOPIC, i % self.partitions)
            out.setdefault(tp, []).append(Message(TOPIC, tp.partition, i // self.partitions, b"{}", None, (), None))
            self.next_offset += 1
            max_records -= 1
        self.now += 0.0005  # the call itself
        return out


def sizes(feed: Feed, polls: int, **kwargs: object) -> list[int]:
    async def go() -> list[int]:
        out = []
        for _ in range(polls):
            polled = await fill(feed.fetch, clock=feed.clock, **kwargs)  # type: ignore[arg-type]
            out.append(sum(map(len, polled.values())))
        return out

    return asyncio.run(go())


def test_a_slow_feed_fills_batches_up_to_the_latency_bound() -> None:
    # 300 records/s, 200 ms: ~60 records per batch (a bare getmany would return 1 here)
    feed = Feed(gap=1 / 300)
    got = sizes(feed, 20, max_records=5000, max_latency_ms=200)
    assert 50 <= statistics.mean(got) <= 70, got
    bare_feed = Feed(gap=1 / 300)  # the old poll: one getmany, on the same feed
    bare = [sum(map(len, asyncio.run(bare_feed.fetch(5000, 200)).values())) for _ in range(20)]
    assert statistics.mean(bare) <= 2, bare


def test_a_full_batch_returns_at_once() -> None:
    feed = Feed(gap=1e-5)  # 100k records/s: 500 records are there after 5 ms
    got = sizes(feed, 5, max_records=500, max_latency_ms=200)
    assert got == [500] * 5
    assert feed.now < 5 * 0.2 / 4  # far below one latency bound per poll


def test_one_full_partition_returns_the_poll() -> None:
    feed = Feed(gap=1e-5, partitions=4)
    polled = asyncio.run(fill(feed.fetch, 4 * 100, 200, per_partition=25, clock=feed.clock))
    assert max(map(len, polled.values())) >= 25
    assert sum(map(len, polled.values())) < 400


def test_an_idle_poll_returns_empty_after_the_timeout() -> None:
    feed = Feed(gap=10.0)
    feed.next_offset = 1  # record 0 was consumed; the next arrives at t=10 s
    polled = asyncio.run(fill(feed.fetch, 100, 200, clock=feed.clock))
    assert polled == {}
    assert feed.calls == 1


def test_interrupted_stops_filling() -> None:
    feed = Feed(gap=0.01)
    polled = asyncio.run(fill(feed.fetch, 5000, 200, interrupted=lambda: True, clock=feed.clock))
    assert sum(map(len, polled.values())) == 1
    assert feed.calls == 1


def msg(partition: int, offset: int) -> Message:
    return Message(TOPIC, partition, offset, b"{}", None, (), None)


def scripted(*answers: dict[TopicPartition, list[Message]] | BaseException) -> Callable[[int, int], Awaitable[dict]]:  # type: ignore[type-arg]
    queue = list(answers)

    async def fetch(max_records: int, timeout_ms: int) -> dict[TopicPartition, list[Message]]:
        answer = queue.pop(0) if queue else {}
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return fetch


def test_a_partition_read_again_from_an_earlier_offset_keeps_only_the_new_records() -> None:
    # rebalance (positions reset to the committed offsets) or a seek during the fill
    fetch = scripted({TP0: [msg(0, 5), msg(0, 6)], TP1: [msg(1, 0)]}, {TP0: [msg(0, 3), msg(0, 4)]}, {TP0: [msg(0, 5)]})
    clock = iter(range(0, 100)).__next__
    polled = asyncio.run(fill(fetch, 100, 50, clock=lambda: float(clock()) / 1000))
    assert [m.offset for m in polled[TP0]] == [3, 4, 5]
    assert [m.offset for m in polled[TP1]] == [0]


def test_offset_gaps_are_not_a_reset() -> None:  # transaction markers and compaction leave gaps
    fetch = scripted({TP0: [msg(0, 1)]}, {TP0: [msg(0, 3)]}, {TP0: [msg(0, 9)]})
    clock = iter(range(0, 100)).__next__
    polled = asyncio.run(fill(fetch, 100, 50, clock=lambda: float(clock()) / 1000))
    assert [m.offset for m in polled[TP0]] == [1, 3, 9]


def test_a_later_fetch_that_fails_hands_over_the_records_in_hand() -> None:
    fetch = scripted({TP0: [msg(0, 1)]}, {TP0: [msg(0, 2)]}, RuntimeError("fetch failed"))
    clock = iter(range(0, 100)).__next__
    polled = asyncio.run(fill(fetch, 100, 50, clock=lambda: float(clock()) / 1000))
    assert [m.offset for m in polled[TP0]] == [1, 2]


def test_in_memory_feed_at_a_fixed_rate_fills_batches() -> None:
    """The in-memory transport's poll as the fetch, a producer at ~400 records/s (real clock): batches hold
    many records, not one (generous margins; nothing is asserted on durations)."""
    transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 1})
    transport.assignment = {TP0}
    total = 120

    async def produce() -> None:
        for i in range(total):
            transport.produce(TOPIC, b"{}", key=str(i).encode())
            await asyncio.sleep(0.0025)

    async def go() -> tuple[list[int], list[int]]:
        task = asyncio.create_task(produce())
        got: list[int] = []
        offsets: list[int] = []
        while sum(got) < total:
            polled = await fill(transport.poll, 5000, 100)
            if polled:
                got.append(sum(map(len, polled.values())))
                offsets += [m.offset for m in polled.get(TP0, [])]
        await task
        return got, offsets

    got, offsets = asyncio.run(asyncio.wait_for(go(), 30.0))
    assert offsets == list(range(total))  # every record once, in order
    assert statistics.mean(got) >= 8, got  # ~40 at 400/s over 100 ms; a bare poll returns ~1


def test_the_brokers_wait_for_more_records_is_taken_off_the_fill() -> None:
    """A worker's fetches are held by the broker for more records (``fetch_wait_ms``) so that a slow feed does not
    cost a fetch response per record (issue 13); a record may have waited that long before it arrived, so the fill
    waits that much less: ``max_latency_ms`` in all (fake clock)."""
    feed, plain = Feed(gap=1 / 300), Feed(gap=1 / 300)
    asyncio.run(fill(feed.fetch, 5000, 200, held_ms=50, clock=feed.clock))
    asyncio.run(fill(plain.fetch, 5000, 200, clock=plain.clock))
    assert 0.150 <= feed.now < 0.155  # the first record arrived at 0: 150 ms of fill, not 200
    assert 0.200 <= plain.now < 0.205
    held_all = Feed(gap=1 / 300)
    polled = asyncio.run(fill(held_all.fetch, 5000, 200, held_ms=200, clock=held_all.clock))
    assert sum(map(len, polled.values())) == 1 and held_all.calls == 1  # the broker's wait was the whole bound


def test_the_aiokafka_transport_fills_with_the_brokers_wait_taken_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import streams.kafka.aiokafka_transport as aiokafka_transport
    from streams.kafka.connection import fetch_wait_ms
    from streams.settings import Settings

    seen: dict[str, object] = {}

    async def recorded(fetch: object, max_records: int, max_latency_ms: int, **kwargs: object) -> dict:  # type: ignore[type-arg]
        seen.update(kwargs, max_latency_ms=max_latency_ms)
        return {}

    monkeypatch.setattr(aiokafka_transport, "fill", recorded)
    settings = Settings(batch_max_latency_ms=400)
    transport = aiokafka_transport.AIOKafkaTransport(settings, "w", [TOPIC], stop=asyncio.Event(),
                                                     observer=WorkerObserver())  # fmt: skip
    transport.session.consumer = object()  # type: ignore[assignment]
    asyncio.run(transport.poll(100, 400))
    assert seen["max_latency_ms"] == 400 and seen["held_ms"] == fetch_wait_ms(settings) == 100
