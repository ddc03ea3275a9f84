"""The service checks of `make image-check`, run inside the container's network namespace
(`nsenter --net`), against the service on the container's own loopback:

    python -m tests.image.probe http://127.0.0.1:8000

ready; a create; its replay, byte for byte, marked `Idempotent-Replayed: true`; a read of its
Location. Exits 1 at the first check that fails.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Sequence

import httpx

from tests.image.report import CheckFailed, expect, note, ok

ORDERS = "/api/v1/orders"
READY_WITHIN_SECONDS = 60.0
BODY = (
    b'{"products": [{"id": 1, "name": "book", "price": 1500, "quantity": 2}], '
    b'"shipping_to": "1 Main St"}'
)


def wait_ready(client: httpx.Client) -> float:
    """Seconds until /health/ready answered 200 (it migrates and connects first)."""
    began = time.monotonic()
    while time.monotonic() - began < READY_WITHIN_SECONDS:
        try:
            if client.get("/health/ready").status_code == 200:
                return time.monotonic() - began
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise CheckFailed(f"not ready within {READY_WITHIN_SECONDS:.0f} s")


def create(client: httpx.Client, key: str) -> httpx.Response:
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    return client.post(ORDERS, content=BODY, headers=headers)


def check_service(client: httpx.Client) -> None:
    ok(f"ready after {wait_ready(client):.1f} s")

    key = f"image-check-{uuid.uuid4()}"
    first = create(client, key)
    expect(first.status_code == 201, f"create: {first.status_code} {first.text}")
    location = first.headers.get("Location", "")
    expect(location.startswith(f"{ORDERS}/"), f"create: Location is {location!r}")
    expect(first.headers.get("Idempotent-Replayed") == "false", "create: marked as a replay")
    ok(f"create: 201, Location {location}")

    replay = create(client, key)
    expect(replay.status_code == 201, f"replay: {replay.status_code} {replay.text}")
    expect(replay.content == first.content, f"replay: {replay.content!r} != {first.content!r}")
    marked = replay.headers.get("Idempotent-Replayed")
    expect(marked == "true", f"replay: Idempotent-Replayed is {marked!r}")
    ok(f"replay: 201, the same {len(first.content)} bytes, Idempotent-Replayed: true")

    read = client.get(location)
    expect(read.status_code == 200, f"GET {location}: {read.status_code} {read.text}")
    as_created = {**first.json(), "version": 1, "updated_at": first.json()["created_at"]}
    expect(read.json() == as_created, f"GET {location}: {read.text} is not the created order")
    ok(f"GET {location}: 200, the created order")


def main(argv: Sequence[str]) -> int:
    with httpx.Client(base_url=argv[0], timeout=10.0) as client:
        try:
            check_service(client)
        except CheckFailed as failure:
            note(f"FAILED: {failure}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
