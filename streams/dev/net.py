"""Ports and readiness of a development broker."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

from streams.errors import BrokerError

log = logging.getLogger(__name__)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Kafka does: TIME_WAIT is no conflict
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for_broker(bootstrap: str, timeout: float = 60.0, _alive: Callable[[], bool] | None = None) -> None:
    """Block until ``bootstrap`` answers a Kafka metadata request with at least one broker."""
    from kafka.admin import KafkaAdminClient  # type: ignore[import-untyped,unused-ignore]

    deadline = time.monotonic() + timeout
    host, _, port = bootstrap.split(",", maxsplit=1)[0].rpartition(":")
    last: Exception | None = None
    while time.monotonic() < deadline:
        if _alive is not None and not _alive():
            raise BrokerError(f"the Kafka broker process for {bootstrap} exited during start-up")
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                pass
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, client_id="streams-wait")
            try:
                if admin.describe_cluster().get("brokers"):
                    return
            finally:
                admin.close()
        except Exception as exc:  # any failure means "not ready yet"
            last = exc
        time.sleep(0.25)
    raise BrokerError(f"no Kafka broker answered at {bootstrap} within {timeout:.0f} s (last error: {last!r}).")
