"""The observer's periodic heartbeat never runs ahead of the partials the internal topic holds.

A batch's partials and its heartbeat go out together, as the batch's outputs, after it was processed. The tick
sends heartbeats of its own meanwhile. One carrying the clock and ``counted_through`` of a batch whose outputs were
not written yet (in flight, or lost with a SIGKILLed worker) let a new owner, restoring from the topic, skip the
batch's records as already counted (they were never counted: found as a window of 23 records instead of 78 in
``test_stream_time_processes``), and let the merger finalize a window before that batch's partials arrived.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson

from streams.cli.stream_time import summary_record
from streams.kafka.transport import TopicPartition
from streams.pipeline.binding import Binding
from streams.pipeline.records import Message
from streams.settings import Settings
from streams.testing.transport import InMemoryTransport
from streams.windows.codec import Heartbeat, decode
from streams.windows.finalize import WindowVerdict
from streams.windows.observer import StreamTimeObserver, TransportStateReader, install
from streams.windows.topics import changelog_topic, state_topic

from .helpers import T0, contract

TOPIC, EVENTS, APP = "orders.v1", "events", "qs-tick"
TP = TopicPartition(TOPIC, 0)
IDLE_S = 5.0
TICK_MS = 4_000_000_000_000  # far from the wall clock: a tick heartbeat is told apart by its time


def settings() -> Settings:
    return Settings(bootstrap_servers="memory:9092", app_id=APP, events_topic=EVENTS, window_idle_close_seconds=IDLE_S,
                    max_clock_skew_seconds=10**9, state_partitions=3, web_port=0)  # fmt: skip


def cluster() -> InMemoryTransport:
    return InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 1, state_topic(APP): 3, changelog_topic(APP): 3,
                                                          EVENTS: 1})  # fmt: skip


async def member(transport: InMemoryTransport, name: str) -> tuple[Binding, StreamTimeObserver]:
    """A worker's binding and stream-time observer, partition 0 assigned (it merges too); no tick task runs."""
    s, c = settings(), contract()
    binding = Binding(c, c.schema(), s)
    observer = install(s, [binding], summary_record(EVENTS), TransportStateReader(transport), worker_id=name,
                       tick_seconds=3600.0)  # fmt: skip
    await observer.on_start(transport)
    assert observer._task is not None
    observer._task.cancel()  # ticks are called by hand
    await observer.on_assign({TP})
    return binding, observer


def produce(transport: InMemoryTransport, n: int) -> list[Message]:
    out = []
    for i in range(n):
        ts = datetime.fromtimestamp((T0 + 1_000 + 100 * i) / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
        value = {"id": i, "event_ts": ts, "amount": 5.0, "country": "DE", "code": f"c{i}"}
        out.append(transport.produce(TOPIC, orjson.dumps(value), timestamp_ms=T0 + 1_000 + 100 * i))
    return out


async def write(transport: InMemoryTransport, binding: Binding, messages: list[Message], name: str) -> None:
    """Process a batch and write its stream-time records (its window partials and heartbeat)."""
    result = binding.process(messages, worker_id=name)
    for record in result.events:
        if record.topic == state_topic(APP):
            await transport.send(record)


def heartbeats(transport: InMemoryTransport) -> list[Heartbeat]:
    return [r for r in (decode(m.value) for m in transport.records(state_topic(APP)) if m.value)
            if isinstance(r, Heartbeat)]  # fmt: skip


def test_a_tick_after_a_batch_whose_outputs_were_lost_does_not_make_its_successor_skip_its_records() -> None:
    async def scenario() -> list[WindowVerdict]:
        transport = cluster()
        now = int(datetime.now(UTC).timestamp() * 1000)
        killed_binding, killed = await member(transport, "w1")
        messages = produce(transport, 6)
        killed_binding.process(messages, worker_id="w1")  # processed; its outputs never written: SIGKILL
        await killed.tick(now)
        assert all(h.counted_through < 0 for h in heartbeats(transport))  # the tick told nothing it had not written
        binding, successor = await member(transport, "w2")
        await write(transport, binding, messages, "w2")  # read again from the last commit: counted now
        successor.on_commit(TP, messages[-1].offset + 1, 0.0)
        return await successor.tick(now + int(IDLE_S * 2000))  # idle: the window is final

    verdicts = asyncio.run(scenario())
    assert [(v.records, v.rows, v.valid) for v in verdicts] == [(6, 6, 6)]


def test_tick_heartbeats_carry_a_partitions_clock_once_its_batches_are_committed() -> None:
    async def scenario() -> tuple[list[Heartbeat], list[Heartbeat], list[Heartbeat]]:
        transport = cluster()
        now = int(datetime.now(UTC).timestamp() * 1000)
        binding, observer = await member(transport, "w1")
        await observer.tick(now)
        idle = heartbeats(transport)  # assigned, no record yet: the tick registers the partition
        messages = produce(transport, 3)
        await write(transport, binding, messages, "w1")  # written, not committed yet
        await observer.tick(TICK_MS)
        before = heartbeats(transport)[len(idle) :]  # the batch's own heartbeat only
        observer.on_commit(TP, messages[-1].offset + 1, 0.0)
        await observer.tick(TICK_MS + 1)
        return idle, before, heartbeats(transport)[len(idle) + len(before) :]

    idle, before, after = asyncio.run(scenario())
    assert [(h.counted_through, h.clock.max_event_ms) for h in idle] == [(-1, None)]
    assert len(before) == 1 and before[0].counted_through == 2 and before[0].sent_ms < TICK_MS  # the batch's
    assert [(h.counted_through, h.clock.max_event_ms) for h in after] == [(2, T0 + 1_200)]
