"""A KRaft Kafka server run as a child JVM from Maven-resolved jars (no Docker needed)."""

from __future__ import annotations

import atexit
import base64
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from streams.dev.config import _LOG4J2, _SETTINGS
from streams.dev.maven import KAFKA_VERSION, _java, resolve_kafka_classpath
from streams.dev.net import _free_port, _port_free, wait_for_broker
from streams.errors import BrokerError

log = logging.getLogger(__name__)


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM the broker when its parent dies (even by SIGKILL)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: atexit still stops the broker on normal exits
        pass


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
