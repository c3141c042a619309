"""Red team 3: the events topic refusing a send *synchronously* (aiokafka's ``send`` raises, rather than failing the
returned future, when the topic's metadata cannot be had: ``TopicAuthorizationFailedError`` for a denied topic,
``KafkaTimeoutError`` for one deleted with auto-creation off).

``docs/delivery.md`` decides that events are part of a batch's delivery: the batch stays uncommitted, consumption is
paused and only the events are re-sent until they land. Before: the exception escaped ``EventDelivery.send`` and
killed the worker."""

from __future__ import annotations

import asyncio
from typing import Any

from streams.pipeline.records import OutRecord
from streams.testing.transport import InMemoryTransport
from tests.unit.kafka.test_worker_faults import VALIDATED, record
from tests.unit.kafka.test_worker_inmemory import EVENTS, TOPIC, TP0, run, running, worker_for


class TopicAuthorizationFailedError(Exception):
    """Stands for aiokafka's error raised by ``send`` for a topic the principal may not write."""


class DenyingEvents(InMemoryTransport):
    """``send`` to the events topic raises while ``denied``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.denied, self.refusals = True, 0

    async def send(self, record: OutRecord) -> asyncio.Future[Any]:
        if record.topic == EVENTS and self.denied:
            self.refusals += 1
            raise TopicAuthorizationFailedError(f"not authorized to write to {EVENTS}")
        return await super().send(record)


def test_an_events_topic_refusing_sends_pauses_the_worker_until_it_accepts_them() -> None:
    transport = DenyingEvents(sources=[TOPIC], partitions={TOPIC: 1})
    worker = worker_for(transport)

    async def scenario() -> None:
        for i in range(3):
            transport.produce(TOPIC, record(i))
        async with running(worker) as task:
            await transport.wait_for(lambda: transport.refusals >= 3 or task.done(), timeout=15)
            assert not task.done(), task.exception()
            assert transport.committed.get(TP0) is None  # not committed while its events are not written
            assert TP0 in transport.paused
            late = transport.produce(TOPIC, record(5))  # not read while paused
            transport.denied = False
            await transport.wait_for(lambda: transport.committed.get(TP0) == 4 or task.done(), timeout=15)
            assert not task.done(), task.exception()
        validated = transport.records(VALIDATED)
        assert len(validated) == 4  # every record once: the records were not sent again for the events
        assert validated[-1].value == late.value
        assert any(m.value for m in transport.records(EVENTS))

    run(scenario)


def test_exactly_once_a_refused_event_send_aborts_the_transaction_never_commits_without_its_events() -> None:
    transport = DenyingEvents(sources=[TOPIC], partitions={TOPIC: 1})
    worker = worker_for(transport, exactly_once=True)

    async def scenario() -> None:
        for i in range(3):
            transport.produce(TOPIC, record(i))
        async with running(worker) as task:
            await transport.wait_for(lambda: transport.refusals >= 2 or task.done(), timeout=15)
            assert not task.done(), task.exception()
            assert transport.committed.get(TP0) is None and transport.records(VALIDATED) == []
            transport.denied = False
            await transport.wait_for(lambda: transport.committed.get(TP0) == 3 or task.done(), timeout=15)
            assert not task.done(), task.exception()
        assert len(transport.records(VALIDATED)) == 3  # aborted transactions left nothing: each record once
        assert any(m.value for m in transport.records(EVENTS))

    run(scenario)


class UnknownTopicError(Exception):
    """Stands for a produce the transport fails at once (``_failed``: the output topic's metadata is gone)."""

    retriable = True


def test_exactly_once_a_record_batch_failed_at_submission_is_not_committed_without_it() -> None:
    """A failed future from ``send_batch`` (aiokafka transport: building the batch failed on the topic's metadata)
    never reached the producer: the transaction must abort, not commit the offsets without those records."""
    transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 1})
    transport.produce_failures.append(UnknownTopicError(f"{VALIDATED} is gone"))
    worker = worker_for(transport, exactly_once=True)

    async def scenario() -> None:
        sent = [transport.produce(TOPIC, record(i)) for i in range(3)]
        async with running(worker) as task:
            await transport.wait_for(lambda: transport.committed.get(TP0) == 3 or task.done(), timeout=15)
            assert not task.done(), task.exception()
        assert [m.value for m in transport.records(VALIDATED)] == [m.value for m in sent]

    run(scenario)
