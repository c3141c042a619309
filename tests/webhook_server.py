"""A real local HTTP server (http.server in a thread) that records the webhook requests it receives."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class WebhookServer:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    fail_next: int = 0  # answer 503 to this many requests first
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, path: str) -> list[Any]:
        with self.lock:
            return [r.body for r in self.requests if r.path == path]


@contextmanager
def webhook_server() -> Iterator[WebhookServer]:
    state: list[WebhookServer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            server = state[0]
            with server.lock:
                if server.fail_next > 0:
                    server.fail_next -= 1
                    code = 503
                else:
                    server.requests.append(Recorded(self.path, dict(self.headers.items()), json.loads(raw)))
                    code = 202
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.append(WebhookServer(f"http://127.0.0.1:{httpd.server_address[1]}"))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state[0]
    finally:
        httpd.shutdown()
        httpd.server_close()
