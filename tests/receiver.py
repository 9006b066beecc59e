"""A local HTTP endpoint that records what is POSTed to it: the test stand-in for a Slack webhook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []  # JSON bodies, in arrival order
        self.paths: list[str] = []
        self.status = 200  # what it answers; set to 500 to play a broken webhook
        self.url = ""
        self._lock = threading.Lock()

    def bodies(self, predicate: Any = None) -> list[dict[str, Any]]:
        with self._lock:
            return [p for p in self.posts if predicate is None or predicate(p)]


@contextmanager
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            status = rec.status
            if status < 300:
                with rec._lock:
                    rec.posts.append(json.loads(body))
                    rec.paths.append(self.path)
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"broken")

        def log_message(self, format: str, *args: object) -> None:  # the base class's signature
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_port}/services/T000/B000/secret-token"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
