"""The official ``apache/kafka`` image through testcontainers, where a Docker engine answers."""

from __future__ import annotations

import importlib
import logging
from types import TracebackType
from typing import Any, Self

from streams.dev.config import _SETTINGS
from streams.dev.maven import KAFKA_VERSION
from streams.dev.net import _free_port, wait_for_broker

log = logging.getLogger(__name__)


def docker_available(timeout: float = 5.0) -> bool:
    """Whether a Docker engine answers (not merely whether the client is installed)."""
    try:
        docker: Any = importlib.import_module("docker")  # the SDK testcontainers drives
        client = docker.from_env(timeout=int(timeout))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no SDK, no socket, no engine: all mean "no"
        return False


class ContainerBroker:
    """The official ``apache/kafka`` image in KRaft mode, through testcontainers."""

    def __init__(self, port: int = 9092, *, version: str = KAFKA_VERSION, start_timeout: float = 90.0) -> None:
        from testcontainers.core.container import DockerContainer

        # The container listens on the host port itself so that the advertised address works inside and out.
        self.port = port or _free_port()
        self.start_timeout = start_timeout
        self._started = False
        self._container: Any = DockerContainer(f"apache/kafka:{version}").with_bind_ports(self.port, self.port)
        self._host = str(self._container.get_docker_client().host())
        env = dict(line.split("=", 1) for line in _SETTINGS.splitlines())
        env |= {
            "listeners": f"PLAINTEXT://0.0.0.0:{self.port},CONTROLLER://127.0.0.1:9093",
            "advertised.listeners": f"PLAINTEXT://{self._host}:{self.port}",
            "controller.quorum.voters": "1@127.0.0.1:9093",
        }
        self._container.with_envs(**{"KAFKA_" + k.upper().replace(".", "_"): v for k, v in env.items()})

    @property
    def bootstrap_servers(self) -> str:
        return f"{self._host}:{self.port}"

    def start(self) -> Self:
        if not self._started:
            self._container.start()
            self._started = True
        try:
            wait_for_broker(self.bootstrap_servers, self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self) -> None:
        self._container.get_wrapped_container().restart(timeout=20)
        wait_for_broker(self.bootstrap_servers, self.start_timeout)

    def stop(self) -> None:
        if self._started:
            self._started = False
            self._container.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
