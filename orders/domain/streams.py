"""Which event stream a (caller, key) pair names: the unit of idempotency.

Keys are scoped per caller: the same key from two callers names two independent streams. The
encoding is injective, so no two different pairs can ever share a stream id:

- the anonymous caller's streams are the key itself, exactly as every stream recorded before
  callers existed, so a database from then keeps working unchanged;
- a named caller's stream is `§`, the caller's length in characters, `:`, the caller, then
  the key. Keys are printable ASCII (0x20-0x7E), so no anonymous stream starts with `§`; and
  the length says exactly where the caller ends, whatever characters it or the key contain
  (`a:b` + `c` and `a` + `b:c` give `§3:a:bc` and `§1:ab:c`).
"""

from __future__ import annotations

from typing import Final

from orders.domain.callers import ANONYMOUS_OWNER

NAMED_PREFIX: Final = "\u00a7"


def order_stream_id(owner: str, key: str) -> str:
    """The stream of the order that `owner` asked for under `key`.

    ValueError for an anonymous key that starts with the named prefix: the API never lets
    one through (keys are ASCII), and it would be ambiguous."""
    if owner == ANONYMOUS_OWNER:
        if key.startswith(NAMED_PREFIX):
            raise ValueError(f"a key cannot start with {NAMED_PREFIX!r}")
        return key
    return f"{NAMED_PREFIX}{len(owner)}:{owner}{key}"


def parse_order_stream_id(stream_id: str) -> tuple[str, str]:
    """The (owner, key) pair `order_stream_id` made `stream_id` from (its inverse)."""
    if not stream_id.startswith(NAMED_PREFIX):
        return ANONYMOUS_OWNER, stream_id
    length, separator, rest = stream_id[len(NAMED_PREFIX) :].partition(":")
    if not separator or not length.isdigit():
        raise ValueError(f"not an order stream id: {stream_id!r}")
    owner_length = int(length)
    return rest[:owner_length], rest[owner_length:]
