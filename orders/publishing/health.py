"""The publisher's HTTP port: `GET /metrics` (Prometheus) and `GET /healthz`.

`/healthz` answers 200 while the publish loop has completed a cycle (published a batch, found
nothing new, or stood by as a non-leader) within the last minute, else 503: a publisher stuck
on a broker or a database that never answers is restarted, one that merely waits is not.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

HEALTHY_WITHIN_SECONDS = 60.0


class Heartbeat:
    """When the publish loop last completed a cycle (a monotonic time; threads read it), and
    whether that is recent enough: within `within` seconds."""

    def __init__(self, within: float = HEALTHY_WITHIN_SECONDS) -> None:
        self._within = within
        self._last = time.monotonic()

    def beat(self) -> None:
        self._last = time.monotonic()

    def healthy(self) -> bool:
        return time.monotonic() - self._last <= self._within


def serve(port: int, heartbeat: Heartbeat, host: str = "") -> ThreadingHTTPServer:
    """Serve both paths on `port` from a daemon thread; return the server (to shut down)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._answer(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
            elif self.path == "/healthz":
                ok = heartbeat.healthy()
                self._answer(200 if ok else 503, "text/plain", b"ok\n" if ok else b"stalled\n")
            else:
                self._answer(404, "text/plain", b"not found\n")

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes and scrapes every few seconds: no access log."""

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="publish-http", daemon=True).start()
    return server
