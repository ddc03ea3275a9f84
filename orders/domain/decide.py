"""The business rules of creating an order."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from orders.domain.commands import CreateOrder
from orders.domain.events import Creation, OrderCreated, OrderRejected
from orders.domain.fingerprint import fingerprint

MAX_LINES = 100
MAX_TOTAL = 10**10
"""In minor units: 100,000,000.00 of the currency."""


def decide(command: CreateOrder, *, order_id: UUID, now: datetime) -> Creation:
    """Create the order, or say why not. Either outcome is recorded under the
    caller's key.

    `order_id` and `now` come from the caller so that the decision itself is deterministic.
    """
    payload_fingerprint = fingerprint(command)
    lines = command.products
    total = sum(line.price * line.quantity for line in lines)
    reason: tuple[str, str] | None = None
    if not lines:
        reason = ("no_products", "an order needs at least one product")
    elif len(lines) > MAX_LINES:
        reason = ("too_many_lines", f"an order has at most {MAX_LINES} lines, not {len(lines)}")
    elif total > MAX_TOTAL:
        reason = ("total_too_large", f"the total {total} is above the limit of {MAX_TOTAL}")
    if reason is not None:
        return OrderRejected(
            request_id=command.request_id,
            reason=reason[0],
            detail=reason[1],
            rejected_at=now,
            fingerprint=payload_fingerprint,
            owner=command.owner,
        )
    return OrderCreated(
        order_id=order_id,
        request_id=command.request_id,
        products=lines,
        shipping_to=command.shipping_to,
        total=total,
        created_at=now,
        fingerprint=payload_fingerprint,
        owner=command.owner,
    )
