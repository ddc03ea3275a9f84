"""What the hostile tests share: the check that a refusal records nothing, hostile keys, and
raw bytes on the wire."""

from __future__ import annotations

import asyncio
from typing import Any, Final

import asyncpg

from tests.api.helpers import ORDERS, assert_problem, row_counts


async def assert_refused_unrecorded(
    pool: asyncpg.Pool, send: Any, status: int, slug: str
) -> dict[str, Any]:
    """`send()` is answered with the problem `slug`, and no event or order was written."""
    before = await row_counts(pool)
    problem = assert_problem(await send(), status, slug)
    assert await row_counts(pool) == before
    return problem


# Idempotency-Key values no key can be read from.
HOSTILE_KEYS: Final[dict[str, bytes]] = {
    "16 KB": b"k" * 16 * 1024,
    "NUL at the end": b"key\x00",
    "only NUL": b"\x00",
    "CRLF": b"key\r\nX-Injected: 1",
    "UTF-8": "kéy".encode(),
    "invalid UTF-8": b"\xff",
}

# Idempotency-Key values that open an sf-string and are not one string, alone.
MALFORMED_SF_STRINGS: dict[str, tuple[bytes, str]] = {
    "unterminated quote": (b'"abc', "invalid-idempotency-key"),
    "only a quote": (b'"', "invalid-idempotency-key"),
    "ends in a backslash": (b'"abc\\', "invalid-idempotency-key"),
    "escaped closing quote": (b'"abc\\"', "invalid-idempotency-key"),
    "bad escape \\n": (b'"a\\nb"', "invalid-idempotency-key"),
    "bad escape \\x": (b'"a\\x41"', "invalid-idempotency-key"),
    "bad escape \\u": (b'"a\\u0041"', "invalid-idempotency-key"),
    "NUL inside": (b'"a\x00b"', "invalid-idempotency-key"),
    "control character inside": (b'"a\x01b"', "invalid-idempotency-key"),
    "tab inside": (b'"a\tb"', "invalid-idempotency-key"),
    "CRLF inside": (b'"a\r\nX-Injected: 1"', "invalid-idempotency-key"),
    "DEL inside": (b'"a\x7fb"', "invalid-idempotency-key"),
    "UTF-8 inside": ('"kéy"'.encode(), "invalid-idempotency-key"),
    "invalid UTF-8 inside": (b'"\xff"', "invalid-idempotency-key"),
    "empty string": (b'""', "invalid-idempotency-key"),
    "a parameterised item": (b'"abc";v=1', "invalid-idempotency-key"),
    "a boolean parameter": (b'"abc";a', "invalid-idempotency-key"),
    "a parameter without a name": (b'"abc";', "invalid-idempotency-key"),
    "text after the string": (b'"abc"def', "invalid-idempotency-key"),
    "two strings side by side": (b'"abc" "def"', "invalid-idempotency-key"),
    "a trailing comma": (b'"abc",', "invalid-idempotency-key"),
    "a list": (b'"abc", "def"', "ambiguous-idempotency-key"),
    "a list without a space": (b'"abc","def"', "ambiguous-idempotency-key"),
    "a list with an inner list": (b'"abc", ("def")', "ambiguous-idempotency-key"),
    "a list of parameterised items": (b'"abc";v=1, "def"', "ambiguous-idempotency-key"),
}


WIRE_DEADLINE_SECONDS = 10.0


async def exchange(server: tuple[str, int], request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read one response: (status, headers, body). The connection is closed
    after the response, whatever part of an announced body was never sent."""
    reader, writer = await asyncio.open_connection(*server)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(WIRE_DEADLINE_SECONDS):
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.split(": ", 1) for line in lines if line)
            headers = {name.lower(): value for name, value in headers.items()}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
    finally:
        writer.close()
    return int(status_line.split()[1]), headers, body


def raw_post(
    body: bytes, *, extra: bytes = b"", length: int | None = None, path: bytes = ORDERS.encode()
) -> bytes:
    """A POST of `body` to `path`, as bytes on the wire, announcing `length` (the body's own
    by default)."""
    announced = len(body) if length is None else length
    return (
        b"POST "
        + path
        + b" HTTP/1.1\r\nHost: orders\r\nContent-Type: application/json\r\n"
        + extra
        + b"Content-Length: %d\r\n\r\n" % announced
        + body
    )
