"""The policy agent's consumer-lag measurement on the real broker: a group whose committed offset is behind the
end of the contract's source topic makes ``lag.records`` and ``lag.seconds`` policies trigger."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.contracts.loader import parse_contract
from streams.policies.agent import PolicyAgent
from streams.policies.lag import PartitionOffsets, consumer_lag, probe_offsets
from streams.settings import load_settings
from tests.unit.policies.conftest import CONTRACT, POLICIES
from tests.unit.policies.test_agent import EVENTS, decisions, settings

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]

LAG_POLICIES = """\
          - name: workers-behind
            when: {metric: lag.records, above: 30}
          - name: waiting-too-long
            when: {metric: lag.seconds, above: 600}
"""


def _probe(workers: Any, group: str, topic: str, now: int) -> list[PartitionOffsets]:
    """The first probe, retried while a fresh broker creates its offsets topic (no group coordinator yet: the
    agent logs such a failure and measures again at the next interval)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return probe_offsets(workers, group, [topic], now_ms=now)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_a_group_behind_the_end_triggers_lag_policies(kafka_broker: Any, unique_name: Any) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # type: ignore[import-untyped,unused-ignore]
    from kafka.admin import KafkaAdminClient, NewTopic  # type: ignore[import-untyped,unused-ignore]
    from kafka.structs import OffsetAndMetadata  # type: ignore[import-untyped,unused-ignore]

    bootstrap = kafka_broker.bootstrap_servers
    topic, group = unique_name("payments"), unique_name("workers")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        admin.close()
    base = int(time.time() * 1000) - 3_600_000  # the records were produced an hour ago (by their timestamps)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for i in range(50):
            producer.send(topic, b"{}", partition=0, timestamp_ms=base + i * 1000)
        producer.flush()
    finally:
        producer.close()
    workers = load_settings(bootstrap_servers=bootstrap, app_id=group)
    now = int(time.time() * 1000)
    # the group has committed nothing yet: everything waits, the oldest record since `base`
    (fresh,) = _probe(workers, group, topic, now)
    assert (fresh.start, fresh.end, fresh.committed, fresh.pending_ms) == (0, 50, None, base)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.commit({tp: OffsetAndMetadata(10, "", -1)})
    finally:
        consumer.close()
    (behind,) = probe_offsets(workers, group, [topic], now_ms=now)
    assert (behind.committed, behind.end, behind.pending_ms) == (10, 50, base + 10_000)
    lag = consumer_lag([behind], now)[topic]
    assert lag.records == 40 and lag.seconds == (now - base - 10_000) / 1000
    contract = parse_contract(CONTRACT.replace(POLICIES, LAG_POLICIES).replace("shop.payments.v1", topic), path="x")
    agent = PolicyAgent([contract], settings(), EVENTS)
    assert agent.lag_topics() == [topic]
    end = datetime.fromtimestamp(now / 1000, UTC)
    out = agent.observe_lag({topic: lag}, end - timedelta(seconds=30), end)
    assert sorted(decisions(out)) == [
        ("triggered", "waiting-too-long"), ("triggered", "workers-behind")]  # fmt: skip
