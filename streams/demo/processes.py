"""The demo's child processes: the stream worker (``qstreams worker``) and the performance joiner
(``qstreams performance run``), each in its own session with its log in the demo's work directory.

Both judge the stream on the same short event-time windows (:data:`STREAM_TIME_ENV`), so the worker's
verdicts and the joiner's realized performance appear within seconds and line up in time. Ctrl-C goes
to the demo, which stops them in order (SIGTERM to the process group, SIGKILL after a timeout).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from streams.errors import StreamsError

__all__ = ["STREAM_TIME_ENV", "check_alive", "child_process", "joiner_env", "tail", "worker_env"]

#: one verdict per 10 s event-time window (no per-batch events), windows closed quickly once idle
STREAM_TIME_ENV = {
    "STREAMS_WINDOW_SECONDS": "10",
    "STREAMS_ALLOWED_LATENESS_SECONDS": "2",
    "STREAMS_WINDOW_IDLE_CLOSE_SECONDS": "5",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _common(bootstrap: str, app_id: str, partitions: int, events_topic: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "STREAMS_APP_ID": app_id,
        "STREAMS_TOPIC_PARTITIONS": str(partitions),
        "STREAMS_EVENTS_TOPIC": events_topic,
        **STREAM_TIME_ENV,
    }


def worker_env(
    bootstrap: str, app_id: str, partitions: int, events_topic: str, contracts: Path, mode: str
) -> dict[str, str]:
    """The worker's settings: the demo judges the stream as production does, one verdict per event-time window."""
    return {
        **_common(bootstrap, app_id, partitions, events_topic),
        "STREAMS_CONTRACTS_DIR": str(contracts.resolve()),
        "STREAMS_MODE": mode,
        "STREAMS_WEB_PORT": str(_free_port()),
        "STREAMS_BATCH_MAX_LATENCY_MS": "500",
        "STREAMS_BATCH_EVENTS": "false",
    }


def joiner_env(bootstrap: str, app_id: str, partitions: int, events_topic: str) -> dict[str, str]:
    """The joiner's settings: the worker's windows (its state topic ``<app_id>.performance-state``)."""
    return _common(bootstrap, app_id, partitions, events_topic)


@contextlib.contextmanager
def child_process(args: list[str], env: Mapping[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m streams.cli.main *args`` with ``env`` added, its output in ``log_path``; stopped on exit."""
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli.main", *args],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C goes to the demo, which stops its children in order
    )
    try:
        yield proc
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def check_alive(proc: subprocess.Popen[bytes], what: str, log_path: Path) -> None:
    """:class:`StreamsError` with the end of its log when the child ``what`` has exited."""
    if proc.poll() is not None:
        raise StreamsError(f"the {what} exited with code {proc.returncode}; see {log_path}:\n" + tail(log_path))


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
