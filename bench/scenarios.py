"""What each API scenario sends, described once for both load generators (wrk and Python).

A scenario is a method, a path (or a file of paths to pick from at random, or to take in turn,
each once), a body, extra headers (a variant's, e.g. credentials), and how the `Idempotency-Key`
is chosen: none, one fixed key, a new key per request (numbered, or a random UUID), or "mixed" (a
share of requests repeat one of the last few keys, so duplicates are in flight together with
originals).
"""

from __future__ import annotations

import random
import uuid
from collections import deque
from pathlib import Path
from typing import Final, Literal

import msgspec

KeyMode = Literal["none", "fixed", "unique", "uuid", "mixed"]
PathMode = Literal["random", "once"]
Ceiling = Literal["insert", "select"]

ORDERS: Final = "/api/v1/orders"
BODY: Final = msgspec.json.encode(
    {
        "products": [{"id": 123, "name": "book", "price": 1999, "quantity": 2}],
        "shipping_to": "Jane Doe, 1 Main Street, 12345 Springfield",
    }
)
ORDER_TOTAL: Final = sum(
    line["price"] * line["quantity"] for line in msgspec.json.decode(BODY)["products"]
)
"""The total of every order BODY creates: what a pay of one of them must send."""
PAY_BODY: Final = msgspec.json.encode({"amount": ORDER_TOTAL, "reference": "bench"})
REPEAT_SHARE: Final = 0.2
"""In "mixed", the share of requests that reuse a recent key."""
RECENT_KEYS: Final = 64
"""How far back "mixed" reaches for a key to repeat: about one request per connection, so most
repeats arrive while the original is still in flight or has just been answered."""


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    ceiling: Ceiling
    """The pgbench ceiling this scenario is compared with."""
    method: str = "GET"
    path: str = ORDERS
    paths_file: Path | None = None
    """One path per line, taken instead of `path` as `paths` says."""
    paths: PathMode = "random"
    """"random": each request picks a path at random; "once": requests take the paths in
    turn, each once (a file with more paths than the run sends requests)."""
    body: bytes | None = None
    keys: KeyMode = "none"
    key: str | None = None
    """The key of "fixed"."""
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    """Sent with every request."""


def creates(keys: KeyMode = "unique", name: str = "creates") -> Scenario:
    return Scenario(name=name, ceiling="insert", method="POST", body=BODY, keys=keys)


CREATES_AGAIN: Final = "creates, again"
"""The creates measured once more right after the pays: a pay's rate is judged against the
mean of the creates before it and after it, so that the machine's drift over the minutes
between them (as much as the gap being measured) does not pass for the pay's cost."""


def mixed() -> Scenario:
    return Scenario(name="mixed", ceiling="insert", method="POST", body=BODY, keys="mixed")


def replays(key: str) -> Scenario:
    return Scenario(
        name="replays", ceiling="select", method="POST", body=BODY, keys="fixed", key=key
    )


def pays(paths_file: Path) -> Scenario:
    """A pay of a different order per request (`paths_file`: their pay paths), each with a new
    key: the lifecycle's compare-and-set append, beside the create it is compared with."""
    return Scenario(
        name="pays",
        ceiling="insert",
        method="POST",
        paths_file=paths_file,
        paths="once",
        body=PAY_BODY,
        keys="unique",
    )


def pay_replays(path: str, key: str) -> Scenario:
    """The same pay, key and all, again and again: answered from what the key recorded."""
    return Scenario(
        name="pay replays",
        ceiling="select",
        method="POST",
        path=path,
        body=PAY_BODY,
        keys="fixed",
        key=key,
    )


def pay_path(order_id: str) -> str:
    return f"{ORDERS}/{order_id}/pay"


def get_order(paths_file: Path) -> Scenario:
    return Scenario(name="get order", ceiling="select", paths_file=paths_file)


def count(label: str) -> Scenario:
    return Scenario(name=f"count @{label}", ceiling="select", path=f"{ORDERS}/count")


def list_page() -> Scenario:
    return Scenario(name="list page", ceiling="select", path=f"{ORDERS}?limit=50")


class Requests:
    """The Python generator's request source, choosing paths and keys as scenario.lua does."""

    def __init__(self, scenario: Scenario, host: str, prefix: str) -> None:
        self._scenario = scenario
        self._host = host
        self._prefix = prefix
        self._counter = 0
        self._taken = 0
        self._recent: deque[str] = deque(maxlen=RECENT_KEYS)
        self._paths = (
            scenario.paths_file.read_text().split() if scenario.paths_file else [scenario.path]
        )
        static = scenario.keys in ("none", "fixed") and len(self._paths) == 1
        self._static = self._render(scenario.key) if static else None

    def next(self) -> bytes:
        """The bytes of the next HTTP/1.1 request."""
        if self._static is not None:
            return self._static
        return self._render(self._next_key())

    def _next_key(self) -> str | None:
        mode = self._scenario.keys
        if mode in ("none", "fixed"):
            return self._scenario.key
        if mode == "uuid":
            return str(uuid.uuid4())
        if mode == "mixed" and self._recent and random.random() < REPEAT_SHARE:
            return random.choice(self._recent)
        self._counter += 1
        key = f"{self._prefix}-{self._counter}"
        self._recent.append(key)
        return key

    def _render(self, key: str | None) -> bytes:
        body = self._scenario.body or b""
        if self._scenario.paths == "once":
            path = self._paths[self._taken % len(self._paths)]
            self._taken += 1
        else:
            path = random.choice(self._paths)
        lines = [f"{self._scenario.method} {path} HTTP/1.1", f"Host: {self._host}"]
        if key is not None:
            lines.append(f"Idempotency-Key: {key}")
        lines += [f"{name}: {value}" for name, value in self._scenario.headers.items()]
        if body:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
