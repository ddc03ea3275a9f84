"""Who is calling: the owner of the orders a request creates and may read, and its roles."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import msgspec

ANONYMOUS_OWNER: Final = ""
"""The owner of every order made without an identity (`ORDERS_AUTH=none`), and of every order
recorded before orders had owners."""

MAX_CALLER_LENGTH: Final = 255


class RoleNames(msgspec.Struct, frozen=True):
    """The names the identity provider gives the service's roles (`ORDERS_*_ROLE`)."""

    admin: str = "orders:admin"
    fulfilment: str = "orders:fulfilment"
    events: str = "orders:events"


class Caller(msgspec.Struct, frozen=True):
    """An authenticated caller (or the anonymous one) and the roles it holds.

    `admin`: reads every order and may do everything to it. `fulfilment`: reads every order
    and may pay, ship, deliver and cancel it. `events`: reads the event feed (every order's
    events, addresses included)."""

    owner: str
    admin: bool = False
    fulfilment: bool = False
    events: bool = False

    @classmethod
    def with_roles(cls, owner: str, roles: Iterable[str], names: RoleNames) -> Caller:
        """`owner` holding whichever of the service's roles `roles` names."""
        held = set(roles)
        return cls(
            owner,
            admin=names.admin in held,
            fulfilment=names.fulfilment in held,
            events=names.events in held,
        )

    @property
    def reads_every_order(self) -> bool:
        return self.admin or self.fulfilment

    @property
    def reads_events(self) -> bool:
        """Whether the caller may read the event feed: admins, the events role, and the
        anonymous caller (only `ORDERS_AUTH=none` has one: there, everyone)."""
        return self.admin or self.events or self.owner == ANONYMOUS_OWNER


ANONYMOUS: Final = Caller(ANONYMOUS_OWNER)


def is_valid_owner(owner: str) -> bool:
    """Whether an identity from a token or a gateway can name an owner: 1 to 255 printable
    characters. Printable rules out what PostgreSQL cannot store (NUL, a lone surrogate) and
    what a log line would not show as it is (control characters)."""
    return 0 < len(owner) <= MAX_CALLER_LENGTH and owner.isprintable()
