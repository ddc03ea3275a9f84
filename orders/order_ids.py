"""Order ids: UUIDv7 (RFC 9562), which begin with their creation time in milliseconds.

Random (v4) ids land all over the `orders` primary key, so with millions of orders every
create dirties another leaf page somewhere in it, and the first change to each page after a
checkpoint writes the whole page to the WAL. Time-ordered ids are inserted next to the newest
ones, into the few pages that are already in memory and dirty. Clients still get an opaque
UUID; only the creation time, which the order shows anyway, can be read from it.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Final

_TIMESTAMP_BITS: Final = 48
_RANDOM_BITS: Final = 80
_VERSION_AND_VARIANT: Final = (0x7 << 76) | (0b10 << 62)
_CLEARED: Final = ~((0xF << 76) | (0b11 << 62))


def uuid7(unix_ms: int, random: bytes) -> uuid.UUID:
    """The UUIDv7 of the millisecond `unix_ms` and 10 `random` bytes (74 bits of them are
    kept: the version and variant take the rest)."""
    if len(random) != _RANDOM_BITS // 8:
        raise ValueError("uuid7 takes 10 random bytes")
    timestamp = unix_ms & ((1 << _TIMESTAMP_BITS) - 1)
    value = (timestamp << _RANDOM_BITS) | int.from_bytes(random, "big")
    return uuid.UUID(int=(value & _CLEARED) | _VERSION_AND_VARIANT)


def new_order_id() -> uuid.UUID:
    """A new order id: now, and 74 bits from the operating system's random source."""
    return uuid7(time.time_ns() // 1_000_000, os.urandom(_RANDOM_BITS // 8))
