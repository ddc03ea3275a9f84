"""Events: what has happened, as recorded in the store. New fields get defaults so that
events already stored keep decoding, and a default is not written (`omit_defaults`), so an
anonymous caller's event is stored exactly as before owners existed."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from orders.domain.callers import ANONYMOUS_OWNER
from orders.domain.commands import ProductLine


class OrderCreated(msgspec.Struct, frozen=True, tag=True, omit_defaults=True):
    order_id: UUID
    request_id: str
    products: list[ProductLine]
    shipping_to: str
    total: int
    created_at: datetime
    fingerprint: str
    owner: str = ANONYMOUS_OWNER
    """Who asked for it; events recorded before orders had owners are the anonymous caller's."""


class OrderRejected(msgspec.Struct, frozen=True, tag=True, omit_defaults=True):
    request_id: str
    reason: str
    """A stable code: `no_products`, `too_many_lines` or `total_too_large`."""
    detail: str
    rejected_at: datetime
    fingerprint: str
    owner: str = ANONYMOUS_OWNER


OrderEvent = OrderCreated | OrderRejected

_decoder: msgspec.json.Decoder[OrderEvent] = msgspec.json.Decoder(OrderEvent)


def decode_event(data: bytes) -> OrderEvent:
    """Decode a stored event's data (which carries its own `type` tag)."""
    return _decoder.decode(data)


def encode_event(event: OrderEvent) -> bytes:
    return msgspec.json.encode(event)


def event_type(event: OrderEvent) -> str:
    return type(event).__name__
