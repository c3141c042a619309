"""What the benchmarks that run ``qstreams worker`` as a process share: a free port for its ``/metrics``, that
page's text, and a stop that waits for the worker's own shutdown (SIGTERM), killing it only after ``timeout``."""

from __future__ import annotations

import signal
import socket
import subprocess
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def metrics_text(port: int) -> str:
    """The worker's ``/metrics`` page; empty while it is not up."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            return str(resp.read().decode())
    except OSError:
        return ""


def stop(worker: subprocess.Popen[bytes], timeout: float = 60) -> int:
    """Stop ``worker`` as a deployment does (SIGTERM: it commits and closes), killed after ``timeout`` seconds;
    its exit code (negative: the signal that ended it)."""
    if worker.poll() is not None:
        return worker.returncode
    worker.send_signal(signal.SIGTERM)
    try:
        return worker.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        worker.kill()
        return worker.wait()
