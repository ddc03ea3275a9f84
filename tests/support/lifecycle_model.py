"""The order's life as the tests model it, written from the README rather than taken from
`orders.domain`, so that a test comparing the two can catch the domain being wrong."""

from __future__ import annotations

from typing import Final

TRANSITIONS: Final = {
    ("created", "pay"): "paid",
    ("paid", "ship"): "shipped",
    ("shipped", "deliver"): "delivered",
    ("created", "cancel"): "cancelled",
    ("paid", "cancel"): "cancelled",
}
"""(status, action) -> the status after it; any other pair is an invalid transition."""

ACTIONS: Final = ("pay", "ship", "deliver", "cancel")
EVENT_OF: Final = {
    "pay": "OrderPaid",
    "ship": "OrderShipped",
    "deliver": "OrderDelivered",
    "cancel": "OrderCancelled",
}
"""The event type each action records."""
ACTION_OF: Final = {event: action for action, event in EVENT_OF.items()}


def allowed(status: str) -> list[str]:
    """What may be done to an order in `status`, in lifecycle order."""
    return [action for action in ACTIONS if (status, action) in TRANSITIONS]
