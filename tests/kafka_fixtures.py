"""Pytest fixtures for tests that need a real Apache Kafka broker (marker ``kafka``).

Load with ``pytest_plugins = ["tests.kafka_fixtures"]`` in ``tests/conftest.py``.

* ``kafka_broker`` (session): the broker in ``KAFKA_BOOTSTRAP_SERVERS`` when set, else one this
  session starts (``start_broker(port=0)``: the ``apache/kafka`` container or a local KRaft JVM).
  It has ``.bootstrap_servers``; a broker we own also has ``.restart()`` (see ``owned_kafka_broker``).
* ``unique_name``: ``unique_name("orders")`` -> ``"orders-test_x-1a2b3c4d"``, unique per call.
* ``kafka_topic_factory``: ``kafka_topic_factory(partitions=3)`` creates a fresh topic, returns its
  name, and deletes it after the test.
* ``kafka_group_id``: a consumer group id no other test uses.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from streams.dev.broker import Broker, bootstrap_from_env, start_broker, wait_for_broker


@dataclass(frozen=True)
class ExternalBroker:
    """A broker someone else runs (``KAFKA_BOOTSTRAP_SERVERS``): we may not restart it."""

    bootstrap_servers: str


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Broker | ExternalBroker]:
    env = bootstrap_from_env()
    if env is not None:
        wait_for_broker(env, 60.0)
        yield ExternalBroker(env)
        return
    broker = start_broker(port=0)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def owned_kafka_broker(kafka_broker: Broker | ExternalBroker) -> Broker:
    """The session broker when this session started it (so it may be restarted), else skip."""
    if isinstance(kafka_broker, ExternalBroker):
        pytest.skip("KAFKA_BOOTSTRAP_SERVERS points at a broker this test session does not own")
    return kafka_broker


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    test = re.sub(r"[^A-Za-z0-9._-]+", "_", request.node.name)[:80]

    def make(prefix: str = "t") -> str:
        return f"{prefix}-{test}-{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
def kafka_group_id(unique_name: Callable[[str], str]) -> str:
    return unique_name("group")


@pytest.fixture
def kafka_topic_factory(
    kafka_broker: Broker | ExternalBroker, unique_name: Callable[[str], str]
) -> Iterator[Callable[..., str]]:
    from kafka.admin import KafkaAdminClient  # type: ignore[import-untyped,unused-ignore]

    created: list[str] = []
    admins: list[Any] = []

    def create(partitions: int = 1, *, prefix: str = "topic", config: dict[str, str] | None = None) -> str:
        if not admins:
            admins.append(KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap_servers, client_id="tests"))
        name = unique_name(prefix)
        spec = {"num_partitions": partitions, "replication_factor": 1, "configs": config or {}}
        admins[0].create_topics({name: spec}, wait_for_metadata=True)
        created.append(name)
        return name

    yield create
    if admins:
        with contextlib.suppress(Exception):  # cleanup is best effort (the broker may be stopped)
            admins[0].delete_topics(created)
        admins[0].close()
