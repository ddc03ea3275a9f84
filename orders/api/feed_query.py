"""What a request for the event feed asks: where to go on from, how many, how long to wait.

The cursor is a place in the store's read order, opaque to clients: base64url (no padding)
of a version byte, then the place's transaction id and position as unsigned 64-bit
big-endian integers. The version byte lets a later release change the encoding and still read
the cursors clients hold. Clients never build or read cursors: they pass back what a
`Link: rel="next"` gave them.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from typing import Final, NamedTuple

from litestar.datastructures import MultiDict

from orders.api import problems
from orders.api.problems import ProblemError
from orders.eventstore import START, Position

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 500
MAX_WAIT_SECONDS: Final = 30

VERSION: Final = 1
_LAYOUT: Final = struct.Struct(">BQQ")
LENGTH: Final = 23
"""Characters in a cursor: 17 bytes in base64url without padding."""
PATTERN: Final = f"^[A-Za-z0-9_-]{{{LENGTH}}}$"

_MAX_POSITION: Final = 2**63 - 1
"""Positions are PostgreSQL bigints; transaction ids (xid8) use all 64 bits."""


class InvalidCursor(ValueError):
    """The text is not a cursor this service issued."""


def encode_cursor(place: Position) -> str:
    raw = _LAYOUT.pack(VERSION, place.tx_id, place.position)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(text: str) -> Position:
    """The place `text` names; InvalidCursor unless it is exactly what `encode_cursor` makes
    of some place (so every place has one spelling, and nothing else is accepted)."""
    if not re.fullmatch(PATTERN, text):
        raise InvalidCursor("not a cursor")
    try:
        raw = base64.b64decode(text + "=", altchars=b"-_", validate=True)
    except binascii.Error:
        raise InvalidCursor("not a cursor") from None
    version, tx_id, position = _LAYOUT.unpack(raw)
    if version != VERSION:
        raise InvalidCursor("a cursor of an unknown version")
    if position > _MAX_POSITION:
        raise InvalidCursor("a position out of range")
    place = Position(tx_id, position)
    if encode_cursor(place) != text:
        raise InvalidCursor("not a cursor")  # spare bits set in the last character
    return place


class FeedQuery(NamedTuple):
    after: Position
    limit: int
    wait_seconds: int


_DIGITS: Final = re.compile("[0-9]{1,3}")


def parse_feed_query(query: MultiDict[str]) -> FeedQuery:
    """`after`, `limit` and `wait` from a query string; ProblemError (400) for a malformed
    or out-of-range one, or one sent twice."""
    after = _single(query, "after")
    try:
        place = START if after is None else decode_cursor(after)
    except InvalidCursor:
        raise ProblemError(
            problems.INVALID_PARAMETER,
            '`after` must be a cursor from a `Link: rel="next"` of this feed',
        ) from None
    limit = _bounded(query, "limit", 1, MAX_LIMIT, DEFAULT_LIMIT)
    wait = _bounded(query, "wait", 0, MAX_WAIT_SECONDS, 0)
    return FeedQuery(place, limit, wait)


def _single(query: MultiDict[str], name: str) -> str | None:
    values = query.getall(name, [])
    if len(values) > 1:
        raise ProblemError(problems.INVALID_PARAMETER, f"send `{name}` at most once")
    return values[0] if values else None


def _bounded(query: MultiDict[str], name: str, low: int, high: int, default: int) -> int:
    text = _single(query, name)
    if text is None:
        return default
    if not _DIGITS.fullmatch(text) or not low <= int(text) <= high:
        raise ProblemError(
            problems.INVALID_PARAMETER, f"`{name}` is a whole number from {low} to {high}"
        )
    return int(text)
