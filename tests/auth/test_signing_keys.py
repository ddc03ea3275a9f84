"""The JWKS is fetched once, kept, and fetched again only for a key id not seen yet, at most
once per refresh interval: never once per request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orders.identity.signing_keys import JwksKeys, SigningKeyError
from tests.auth.tokens import JWKS_FILE


class JwksServer:
    """A real HTTP server on 127.0.0.1 serving `document`, counting the fetches."""

    def __init__(self) -> None:
        self.document = json.loads(JWKS_FILE.read_text())
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                body = json.dumps(server.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/jwks.json"

    def __enter__(self) -> JwksServer:
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    with JwksServer() as server:
        yield server


async def test_known_key_ids_are_served_from_the_first_fetch(jwks: JwksServer) -> None:
    keys = JwksKeys(jwks.url)
    await keys.load()

    for _ in range(100):
        await keys.key_for("test-rsa-1")
        await keys.key_for("test-ec-1")

    assert jwks.fetches == 1


async def test_unknown_key_ids_fetch_again_at_most_once_per_interval(jwks: JwksServer) -> None:
    now = [0.0]
    keys = JwksKeys(jwks.url, refresh_interval=3600, clock=lambda: now[0])
    await keys.load()
    now[0] += 3600

    for attempt in range(50):
        with pytest.raises(SigningKeyError):
            await keys.key_for(f"made-up-{attempt}")

    assert jwks.fetches == 2


async def test_a_rotated_key_is_found_by_fetching_again(jwks: JwksServer) -> None:
    keys = JwksKeys(jwks.url, refresh_interval=0)
    await keys.load()
    rotated = {**jwks.document["keys"][0], "kid": "test-rsa-2"}
    jwks.document = {"keys": [rotated]}

    key = await keys.key_for("test-rsa-2")

    assert key.key_id == "test-rsa-2"
    assert jwks.fetches == 2


async def test_a_jwks_that_cannot_be_fetched_fails_the_start() -> None:
    keys = JwksKeys("http://127.0.0.1:9/nothing-listens-here")

    with pytest.raises(OSError):
        await keys.load()
