"""Exactly-once against a real broker, under a backlog: transactions hold several polls, and one that fails (its
commit refused) is aborted and read again whole; ``read_committed`` readers see every input exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from streams.kafka.aiokafka_transport import AIOKafkaTransport
from streams.kafka.observers import WorkerObserver
from tests.integration.kafka.test_worker_kafka import (  # noqa: F401 (feature_stream: a fixture)
    Stream,
    check_routing,
    dataset,
    feature_stream,
    outputs,
    produce,
    wait_committed,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]


class CountedTransactions(AIOKafkaTransport):
    """The real transport, counting transactions; the ``fail``-th commit is refused before it reaches the broker."""

    fail: ClassVar[int | None] = None
    made: ClassVar[list[CountedTransactions]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commits, self.aborts = 0, 0
        self.made.append(self)

    async def commit_transaction(self) -> None:
        self.commits += 1
        if self.commits == self.fail:
            raise RuntimeError("the transaction coordinator refused this commit")
        await super().commit_transaction()

    async def abort_transaction(self) -> None:
        self.aborts += 1
        await super().abort_transaction()


class Polls(WorkerObserver):
    def __init__(self) -> None:
        self.polls = 0

    def on_batch_end(self, tp: Any, binding: Any, messages: int, result: Any, lag: Any) -> None:
        self.polls += 1  # one source partition per batch of 100 records: a poll's batch


@pytest.mark.parametrize("fail", [None, 2], ids=["committed", "second-commit-refused"])
def test_a_backlog_goes_through_transactions_of_several_polls_exactly_once(
    fail: int | None,
    feature_stream: Callable[..., Stream],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import streams.kafka.aiokafka_transport
    from streams.kafka.worker import BatchWorker, build_bindings

    counted = type("Counted", (CountedTransactions,), {"fail": fail, "made": []})
    monkeypatch.setattr(streams.kafka.aiokafka_transport, "AIOKafkaTransport", counted)  # the worker's transport

    stream = feature_stream(2)
    bootstrap, topic, group, settings = stream.bootstrap, stream.topic, stream.group, stream.settings
    settings = settings.model_copy(update={
        "exactly_once": True, "batch_max_records": 100, "transaction_interval_ms": 60_000,
        "transaction_max_records": 1000, "worker_id": "w1",
    })  # fmt: skip
    msgs, invalid, undecodable = dataset(3000, seed=13)

    async def scenario() -> Polls:
        await produce(bootstrap, topic, msgs)  # a backlog: polls come back full
        polls = Polls()
        worker = BatchWorker(settings, build_bindings(settings), worker_id="w1", observers=[polls])
        task = asyncio.create_task(worker.run())
        await wait_committed(bootstrap, group, topic)
        worker.stop()
        await task
        return polls

    polls = asyncio.run(scenario())
    (transport,) = counted.made
    out = asyncio.run(outputs(bootstrap, topic, committed_only=True))
    check_routing(out, msgs, invalid=invalid, undecodable=undecodable, exact=True)
    assert transport.commits * 3 <= polls.polls, (transport.commits, polls.polls)  # ~10 polls per transaction
    assert transport.aborts == (fail is not None)
