"""Both load generators send what a scenario asks for: a variant's extra headers on every
request, with "uuid" keys a new random UUID as each request's Idempotency-Key, and with paths
taken "once" each path of the file in turn (the pays: every request its own order)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

import msgspec
import pytest

from bench.load import run_load, wrk_available
from bench.scenarios import creates, pay_path, pays

HEADERS = {"Authorization": "Bearer token-of-a-variant", "X-Bench-Variant": "smoke"}
PATH = ":path"
"""Where the recorder puts each request's path beside its headers."""
GENERATORS = [
    "python",
    pytest.param("wrk", marks=pytest.mark.skipif(not wrk_available(), reason="no wrk")),
]


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as both generators expect
    seen: list[dict[str, str]]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append({**dict(self.headers.items()), PATH: self.path})
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
        httpd.shutdown()
        thread.join()


@pytest.mark.parametrize("generator", GENERATORS)
def test_every_request_carries_the_variant_headers_and_a_new_random_uuid_key(
    server: tuple[str, list[dict[str, str]]], generator: Literal["wrk", "python"]
) -> None:
    base_url, seen = server
    scenario = msgspec.structs.replace(creates(keys="uuid"), headers=HEADERS)
    measured = run_load(generator, scenario, base_url, 2, 1)

    assert measured.requests > 0 and measured.errors == 0
    assert len(seen) >= measured.requests
    assert all({name: request.get(name) for name in HEADERS} == HEADERS for request in seen)
    keys = [request["Idempotency-Key"] for request in seen]
    assert all(uuid.UUID(key).version == 4 for key in keys)
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("generator", GENERATORS)
def test_pays_take_the_paths_in_turn_each_once_with_a_new_key_each(
    server: tuple[str, list[dict[str, str]]],
    generator: Literal["wrk", "python"],
    tmp_path: Path,
) -> None:
    base_url, seen = server
    paths = [pay_path(str(uuid.uuid4())) for _ in range(200_000)]
    paths_file = tmp_path / "pay-paths.txt"
    paths_file.write_text("\n".join(paths) + "\n")

    measured = run_load(generator, pays(paths_file), base_url, 2, 1)

    assert 0 < measured.requests < len(paths) and measured.errors == 0
    index = {path: i for i, path in enumerate(paths)}
    taken = sorted(index[request[PATH]] for request in seen)
    assert len(set(taken)) == len(taken), "a path was sent twice"
    # In turn from the top: wrk builds one request per thread that it never sends.
    assert taken[-1] - (len(taken) - 1) <= (1 if generator == "wrk" else 0)
    keys = [request["Idempotency-Key"] for request in seen]
    assert len(set(keys)) == len(keys)
