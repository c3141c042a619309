"""A real single-node KRaft Apache Kafka broker for development and tests.

The broker is the genuine ``org.apache.kafka:kafka_2.13`` server, resolved once
from Maven Central with ``mvn`` and run on the local Java (17+). Where a Docker
engine answers, :func:`start_broker` uses the official ``apache/kafka`` image
through testcontainers instead.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import importlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from streams.errors import BrokerError

__all__ = [
    "KAFKA_VERSION",
    "Broker",
    "BrokerError",
    "ContainerBroker",
    "DevBroker",
    "bootstrap_from_env",
    "docker_available",
    "resolve_kafka_classpath",
    "run_dev_broker",
    "start_broker",
    "wait_for_broker",
]

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"  # the log4j2 release Kafka 4.1 ships; binds slf4j 1.7 (Kafka's API)
_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_MARKER = "libs.complete"


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM the broker when its parent dies (even by SIGKILL)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: atexit still stops the broker on normal exits
        pass


class Broker(Protocol):
    """What :func:`start_broker` returns."""

    @property
    def bootstrap_servers(self) -> str: ...
    def restart(self) -> None: ...
    def stop(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None: ...


def bootstrap_from_env() -> str | None:
    """``KAFKA_BOOTSTRAP_SERVERS`` when it is set to something non-empty."""
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None


def _cache_home(version: str, cache_dir: str | os.PathLike[str] | None) -> Path:
    root = cache_dir or os.environ.get("STREAMS_CACHE_DIR") or Path.home() / ".cache" / "quality-streams"
    return Path(root).expanduser() / f"kafka-{version}"


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise BrokerError(
            "Java was not found on PATH (nor in JAVA_HOME); the local Kafka broker needs Java 17 or newer. "
            "Install it (for example `apt-get install default-jre-headless`, or run .ci/install-kafka), "
            "or point KAFKA_BOOTSTRAP_SERVERS at a running broker."
        )
    return found


_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.quality-streams</groupId>
  <artifactId>kafka-dev-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>{log4j}</version></dependency>
  </dependencies>
</project>
"""


def resolve_kafka_classpath(
    version: str = KAFKA_VERSION, cache_dir: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Jars of the Kafka ``version`` server and its runtime dependencies, downloaded once.

    They are kept in ``<cache_dir or $STREAMS_CACHE_DIR or ~/.cache/quality-streams>/kafka-<version>/libs``;
    once complete, later calls read the directory and run no Maven.
    """
    home = _cache_home(version, cache_dir)
    libs, marker = home / "libs", home / _MARKER
    if marker.is_file():
        jars = [libs / name for name in marker.read_text().split()]
        if jars and all(jar.is_file() for jar in jars):
            return jars
    _java()  # Maven itself needs Java: say so first
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven (mvn) was not found on PATH; it is needed once to download the Kafka jars from Maven Central. "
            "Install it (for example `apt-get install maven`, or run .ci/install-kafka), "
            "or point KAFKA_BOOTSTRAP_SERVERS at a running broker."
        )
    home.mkdir(parents=True, exist_ok=True)
    pom = home / "pom.xml"
    pom.write_text(_POM.format(kafka=version, log4j=LOG4J_VERSION))
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=home))
    cmd = [mvn, "-B", "-q", "-f", str(pom), f"{_DEPENDENCY_PLUGIN}:copy-dependencies", f"-DoutputDirectory={staging}"]
    log.info("resolving Apache Kafka %s with Maven into %s", version, libs)
    started = time.monotonic()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, check=False)
        names = sorted(p.name for p in staging.glob("*.jar"))
        if done.returncode != 0 or not any(name.startswith("kafka_2.13-") for name in names):
            raise BrokerError(
                f"Maven could not resolve org.apache.kafka:kafka_2.13:{version} (exit {done.returncode}); the version "
                f"may not exist or Maven Central may be unreachable:\n{(done.stdout + done.stderr)[-2000:]}"
            )
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, subprocess.TimeoutExpired):
            raise BrokerError(f"Maven did not finish resolving Kafka {version} within {exc.timeout:.0f} s.") from exc
        raise
    marker.unlink(missing_ok=True)
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    marker.write_text("\n".join(names) + "\n")
    log.info("resolved %d jars for Kafka %s in %.1f s", len(names), version, time.monotonic() - started)
    return [libs / name for name in names]


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


_LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.state.name = state.change.logger
logger.state.level = WARN
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
"""


# Settings shared by DevBroker and ContainerBroker: one node, so every internal topic has one replica.
_SETTINGS = """process.roles=broker,controller
node.id=1
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
"""
_DETACHED: dict[str, Any] = {
    "stdin": subprocess.DEVNULL,
    "stderr": subprocess.STDOUT,
    "start_new_session": True,
    "preexec_fn": _die_with_parent,
}
_JVM_OPTS = ["-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError", "-Dlog4j2.shutdownHookEnabled=false"]


class DevBroker:
    """A KRaft combined-mode (broker+controller) Kafka server run from Maven-resolved jars."""

    def __init__(
        self,
        port: int = 9092,
        *,
        controller_port: int = 0,
        data_dir: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        version: str = KAFKA_VERSION,
        start_timeout: float = 60.0,
        heap: tuple[str, str] = ("256m", "512m"),
    ) -> None:
        self.port = port or _free_port()
        self.controller_port = controller_port or _free_port()
        self._own_data = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="streams-kafka-"))
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix=f"streams-kafka-{self.port}-", suffix=".log")
            os.close(fd)
            log_path = name
        self.log_path = Path(log_path)
        self.version, self.start_timeout, self.heap = version, start_timeout, heap
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __str__(self) -> str:
        return self.bootstrap_servers

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "server.properties"
        listeners = f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
        config.write_text(
            f"{_SETTINGS}listeners={listeners}\nadvertised.listeners=PLAINTEXT://127.0.0.1:{self.port}\n"
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}\nlog.dirs={self.data_dir / 'kraft-logs'}\n"
        )
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2)
        return config

    def _java_cmd(self, main: str, *args: str) -> list[str]:
        classpath = os.pathsep.join(str(p) for p in resolve_kafka_classpath(self.version))
        log4j = f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}"
        heap = [f"-Xms{self.heap[0]}", f"-Xmx{self.heap[1]}"]
        return [_java(), *heap, *_JVM_OPTS, log4j, "-cp", classpath, main, *args]

    def _format(self, config: Path) -> None:
        if (self.data_dir / "kraft-logs" / "meta.properties").is_file():
            return
        cluster_id = "-"
        while cluster_id.startswith("-"):  # like Kafka's Uuid.randomUuid(): "-..." would parse as an option
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        cmd = self._java_cmd("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config))
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise BrokerError(
                f"formatting Kafka storage in {self.data_dir} failed:\n{(done.stdout + done.stderr)[-2000:]}"
            )

    def start(self) -> Self:
        if self._proc is not None and self._proc.poll() is None:
            return self
        for port in (self.port, self.controller_port):
            if not _port_free(port):
                raise BrokerError(f"port {port} on 127.0.0.1 is already in use (another Kafka broker still running?).")
        atexit.unregister(self.stop)  # at most one registration; it also cleans up after a failed start
        atexit.register(self.stop)
        config = self._write_config()
        self._format(config)
        started = time.monotonic()
        with self.log_path.open("ab") as out:
            self._proc = subprocess.Popen(
                self._java_cmd("kafka.Kafka", str(config)), **_DETACHED, stdout=out, cwd=self.data_dir
            )
        proc = self._proc
        try:
            wait_for_broker(self.bootstrap_servers, self.start_timeout, _alive=lambda: proc.poll() is None)
        except BaseException as exc:
            self._kill(keep_data=True)
            if isinstance(exc, BrokerError):
                raise BrokerError(f"{exc}; from the broker log {self.log_path}:\n{self._log_tail()}") from None
            raise
        took = time.monotonic() - started
        log.info("Kafka %s ready at %s in %.1f s (pid %d, log %s)", self.version, self, took, proc.pid, self.log_path)
        return self

    def _log_tail(self) -> str:
        """The ERROR/FATAL lines of the broker log (with the line after each), else its last 20 lines."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        hits = [i for i, line in enumerate(lines) if " ERROR " in line or " FATAL " in line][-3:]
        return "\n".join(line for i in hits for line in lines[i : i + 2]) or "\n".join(lines[-20:])

    def _kill(self, *, keep_data: bool, timeout: float = 20.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    log.warning("Kafka broker pid %d ignored %s", proc.pid, sig.name)
        if not keep_data:
            atexit.unregister(self.stop)
            if self._own_data:
                shutil.rmtree(self.data_dir, ignore_errors=True)

    def stop(self) -> None:
        """Stop the broker (SIGTERM to its process group, SIGKILL if it lingers); remove a temp data dir."""
        self._kill(keep_data=False)

    def restart(self) -> None:
        """Stop the broker process and start it again on the same ports with the same data."""
        self._kill(keep_data=True)
        self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


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


def start_broker(port: int = 9092, *, version: str = KAFKA_VERSION) -> Broker:
    """Start a broker: the ``apache/kafka`` container when Docker answers, else a :class:`DevBroker`."""
    if docker_available():
        return ContainerBroker(port, version=version).start()
    return DevBroker(port, version=version).start()


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
