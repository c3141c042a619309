"""Red team 3: an output topic whose metadata the producer cannot get (``.quarantine`` denied by an ACL, or deleted
with auto-creation off): aiokafka's ``partitions_for`` *raises* (``TopicAuthorizationFailedError``,
``KafkaTimeoutError``). Before: the exception escaped ``BatchWorker._send`` and killed the worker. Now it is a
failed output of the batch: retried (without limit when retriable), then, when the broker keeps refusing, the batch
ends as reference records in the DLQ (``output.refused.<Exception>``, ``docs/delivery.md``)."""

from __future__ import annotations

import pytest

from streams.testing.transport import InMemoryTransport
from tests.unit.kafka.test_worker_faults import DLQ, QUARANTINE, VALIDATED, headers_of, record
from tests.unit.kafka.test_worker_inmemory import TOPIC, TP0, run, running, worker_for


class TopicAuthorizationFailedError(Exception):
    """Stands for aiokafka's error for a topic the principal may not write (not retriable)."""

    retriable = False


class KafkaTimeoutError(Exception):
    """Stands for aiokafka's metadata wait timing out (a deleted topic; retriable)."""

    retriable = True


class NoMetadata(InMemoryTransport):
    """``partition_count`` of ``topic`` raises ``error`` ``times`` times (None: always)."""

    def __init__(self, topic: str, error: Exception, times: int | None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.topic, self.error, self.times, self.raised = topic, error, times, 0

    async def partition_count(self, topic: str) -> int:
        if topic == self.topic and (self.times is None or self.raised < self.times):
            self.raised += 1
            raise self.error
        return await super().partition_count(topic)


def test_a_denied_quarantine_topic_ends_the_batch_as_references_in_the_dlq() -> None:
    transport = NoMetadata(QUARANTINE, TopicAuthorizationFailedError(QUARANTINE), None, sources=[TOPIC],
                           partitions={TOPIC: 1})  # fmt: skip
    worker = worker_for(transport, batch_retries=1)

    async def scenario() -> None:
        transport.produce(TOPIC, record(0))
        transport.produce(TOPIC, record(1, channel="fax"))  # invalid: quarantined
        async with running(worker) as task:
            await transport.wait_for(lambda: transport.committed.get(TP0) == 2 or task.done(), timeout=15)
            assert not task.done(), task.exception()
        refs = transport.records(DLQ)
        assert sorted(int(headers_of(m)["qstreams.errors.offset"]) for m in refs) == [0, 1]
        assert {headers_of(m)["qstreams.errors.class"] for m in refs} == {
            "output.refused.TopicAuthorizationFailedError"
        }
        assert not transport.records(QUARANTINE)

    run(scenario)


@pytest.mark.parametrize("topic", [VALIDATED, QUARANTINE])
def test_a_retriable_metadata_failure_is_retried_until_the_topic_is_back(topic: str) -> None:
    transport = NoMetadata(topic, KafkaTimeoutError(f"no metadata for {topic}"), 5, sources=[TOPIC],
                           partitions={TOPIC: 1})  # fmt: skip
    worker = worker_for(transport, batch_retries=1)  # fewer retries than failures: retriable ones are not counted

    async def scenario() -> None:
        transport.produce(TOPIC, record(0))
        transport.produce(TOPIC, record(1, channel="fax"))
        async with running(worker) as task:
            await transport.wait_for(lambda: transport.committed.get(TP0) == 2 or task.done(), timeout=20)
            assert not task.done(), task.exception()
        assert transport.raised == 5
        assert len(transport.records(VALIDATED)) >= 1 and len(transport.records(QUARANTINE)) >= 1
        assert not transport.records(DLQ)

    run(scenario)


class NoMetadataFor(NoMetadata):
    """``partition_count`` raises ``error`` for every topic of ``topics``."""

    def __init__(self, topics: set[str], error: Exception, **kwargs: object) -> None:
        super().__init__("", error, None, **kwargs)
        self.topics = topics

    async def partition_count(self, topic: str) -> int:
        if topic in self.topics:
            self.raised += 1
            raise self.error
        return await InMemoryTransport.partition_count(self, topic)


def test_a_denied_quarantine_and_dlq_leave_the_partition_retrying_uncommitted_and_health_failing() -> None:
    error = TopicAuthorizationFailedError("denied")
    transport = NoMetadataFor({QUARANTINE, DLQ}, error, sources=[TOPIC], partitions={TOPIC: 1})
    worker = worker_for(transport, batch_retries=1)

    async def scenario() -> None:
        transport.produce(TOPIC, record(1, channel="fax"))
        async with running(worker) as task:
            await transport.wait_for(lambda: transport.raised >= 4 or task.done(), timeout=20)
            assert not task.done(), task.exception()
            assert transport.committed.get(TP0) is None  # nowhere to put the record: not committed, not dropped
            assert worker.health.report()[0] == 503
        assert not transport.records(QUARANTINE) and not transport.records(DLQ)

    run(scenario)
