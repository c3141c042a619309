"""The exactly-once worker's transactional producer retries its coordinator requests after 20 ms, not 100 ms."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from streams.kafka.connection import TRANSACTIONAL_RETRY_BACKOFF_MS, producer_config
from streams.settings import Settings


def test_the_transactional_producer_retries_after_a_short_backoff_and_the_others_keep_the_default() -> None:
    transactional = producer_config(Settings(exactly_once=True), "w1")
    assert transactional["transactional_id"] == "quality-streams-w1"
    assert transactional["retry_backoff_ms"] == TRANSACTIONAL_RETRY_BACKOFF_MS == 20
    assert "retry_backoff_ms" not in producer_config(Settings(), "w1")  # aiokafka's 100 ms

    async def backoff() -> float:
        producer = AIOKafkaProducer(**transactional)  # not started: no broker needed
        return float(producer._sender._retry_backoff)  # what the transaction handlers sleep after a retriable error

    assert asyncio.run(backoff()) == TRANSACTIONAL_RETRY_BACKOFF_MS / 1000
