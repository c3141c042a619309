"""A real single-node KRaft Apache Kafka broker for development and tests (never imported by the runtime).

The broker is the genuine ``org.apache.kafka:kafka_2.13`` server, resolved once
from Maven Central with ``mvn`` and run on the local Java (17+). Where a Docker
engine answers, :func:`start_broker` uses the official ``apache/kafka`` image
through testcontainers instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Protocol, Self

from streams.dev.container import ContainerBroker, docker_available
from streams.dev.jvm import DevBroker
from streams.dev.maven import KAFKA_VERSION, resolve_kafka_classpath
from streams.dev.net import wait_for_broker
from streams.errors import BrokerError
from streams.settings import normalize_bootstrap

__all__ = [
    "KAFKA_VERSION",
    "Broker",
    "BrokerError",
    "ContainerBroker",
    "DevBroker",
    "bootstrap_from_env",
    "docker_available",
    "kafka_bootstrap",
    "resolve_kafka_classpath",
    "run_dev_broker",
    "start_broker",
    "wait_for_broker",
]

log = logging.getLogger(__name__)


class Broker(Protocol):
    """What :func:`start_broker` returns."""

    @property
    def bootstrap_servers(self) -> str: ...
    def restart(self) -> None: ...
    def stop(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None: ...


def bootstrap_from_env() -> str | None:
    """``KAFKA_BOOTSTRAP_SERVERS`` (``kafka://`` and lists accepted) when it is set to something non-empty."""
    value = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None
    if value is None:
        return None
    try:
        return normalize_bootstrap(value)
    except ValueError as exc:
        raise BrokerError(f"KAFKA_BOOTSTRAP_SERVERS is not usable: {exc}") from None


def start_broker(port: int = 9092, *, version: str = KAFKA_VERSION) -> Broker:
    """Start a broker: the ``apache/kafka`` container when Docker answers, else a :class:`DevBroker`."""
    if docker_available():
        return ContainerBroker(port, version=version).start()
    return DevBroker(port, version=version).start()


@contextlib.contextmanager
def kafka_bootstrap() -> Iterator[str]:
    """The bootstrap servers of ``KAFKA_BOOTSTRAP_SERVERS``, else of a broker started for the block (on a free
    port) and stopped after it: what benchmarks and scripts run against."""
    bootstrap = bootstrap_from_env()
    if bootstrap is not None:
        yield bootstrap
        return
    broker = start_broker(port=0)
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


def run_dev_broker(port: int, on_ready: Callable[[str], None]) -> None:
    """Serve a broker (or the one in ``KAFKA_BOOTSTRAP_SERVERS``) until SIGINT/SIGTERM.

    Must be called from the main thread (it installs signal handlers, restored on return).
    """
    received: list[int] = []  # list.append takes no lock: safe in a signal handler, unlike Event.set()
    previous = {sig: signal.signal(sig, lambda num, _: received.append(num)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with contextlib.ExitStack() as stack:
            bootstrap = bootstrap_from_env()
            if bootstrap is None:
                bootstrap = stack.enter_context(start_broker(port)).bootstrap_servers
            else:
                wait_for_broker(bootstrap, 60.0)
            on_ready(bootstrap)
            while not received:
                time.sleep(0.2)
            log.info("received %s: stopping", signal.Signals(received[0]).name)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
