"""Who is calling: the owner of the orders a request creates and may read."""

from __future__ import annotations

from typing import Final

import msgspec

ANONYMOUS_OWNER: Final = ""
"""The owner of every order made without an identity (`ORDERS_AUTH=none`), and of every order
recorded before orders had owners."""

MAX_CALLER_LENGTH: Final = 255


class Caller(msgspec.Struct, frozen=True):
    """An authenticated caller (or the anonymous one) and whether it may read every order."""

    owner: str
    admin: bool = False


ANONYMOUS: Final = Caller(ANONYMOUS_OWNER)


def is_valid_owner(owner: str) -> bool:
    """Whether an identity from a token or a gateway can name an owner: 1 to 255 printable
    characters. Printable rules out what PostgreSQL cannot store (NUL, a lone surrogate) and
    what a log line would not show as it is (control characters)."""
    return 0 < len(owner) <= MAX_CALLER_LENGTH and owner.isprintable()
