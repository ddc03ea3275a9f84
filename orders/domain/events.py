"""Events: what has happened, as recorded in the store. New fields get defaults so that
events already stored keep decoding, and a default is not written (`omit_defaults`), so an
anonymous caller's event is stored exactly as before owners existed."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
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


class _Transition(msgspec.Struct, frozen=True, omit_defaults=True):
    """What every event after an order's creation records beside its own facts: the order, when,
    who asked (`by`, a caller's id; '' the anonymous caller), and under which of that caller's
    keys with which payload (`request_id`, `fingerprint`), so that a retry finds its outcome
    in the very event it produced."""

    order_id: UUID
    occurred_at: datetime
    by: str
    request_id: str
    fingerprint: str


class OrderPaid(_Transition, frozen=True, tag=True):
    amount: int
    """In minor units: the order's total."""
    reference: str
    """The payment provider's reference."""


class OrderShipped(_Transition, frozen=True, tag=True):
    carrier: str
    tracking: str


class OrderDelivered(_Transition, frozen=True, tag=True):
    pass


class OrderCancelled(_Transition, frozen=True, tag=True):
    reason: str | None
    refund_owed: int
    """In minor units: the amount paid, to be refunded (0 when nothing was paid)."""


LifecycleEvent = OrderPaid | OrderShipped | OrderDelivered | OrderCancelled
LIFECYCLE_EVENTS: Final = (OrderPaid, OrderShipped, OrderDelivered, OrderCancelled)
Creation = OrderCreated | OrderRejected
"""The outcome of a create: the first event of every stream."""
OrderEvent = Creation | LifecycleEvent

EVENT_TYPES: Final = tuple(cls.__name__ for cls in (OrderCreated, OrderRejected, *LIFECYCLE_EVENTS))
"""Every event type the store holds, by the name it is recorded under."""

PRIVATE_FIELDS: Final = frozenset({"request_id", "fingerprint"})
"""What an event records only to answer retries: the caller's key and its payload's
fingerprint. Never shown in a history or published."""

_decoder: msgspec.json.Decoder[OrderEvent] = msgspec.json.Decoder(OrderEvent)
_creation_decoder: msgspec.json.Decoder[Creation] = msgspec.json.Decoder(Creation)


def decode_event(data: bytes) -> OrderEvent:
    """Decode a stored event's data (which carries its own `type` tag)."""
    return _decoder.decode(data)


def decode_creation(data: bytes) -> Creation:
    """Decode the first event of a stream (a ValidationError for any other)."""
    return _creation_decoder.decode(data)


def encode_event(event: OrderEvent) -> bytes:
    return msgspec.json.encode(event)


def event_type(event: OrderEvent) -> str:
    return type(event).__name__


def public_data(event: OrderEvent) -> dict[str, Any]:
    """The event's facts as JSON values, without its type tag and its private fields: what an
    order's history shows and what other services are told."""
    fields: dict[str, Any] = msgspec.to_builtins(event)
    return {name: value for name, value in fields.items() if name not in _NOT_PUBLIC}


_NOT_PUBLIC: Final = PRIVATE_FIELDS | {"type"}
