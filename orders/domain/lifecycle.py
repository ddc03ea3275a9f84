"""The order's life: one transition table, the fold of a stream into the order's state, and
the decision of a lifecycle command over that state.

    created --pay--> paid --ship--> shipped --deliver--> delivered
    created --cancel--> cancelled        paid --cancel--> cancelled (a refund is owed)

`delivered` and `cancelled` are final. A rejected create has no order to act on. A decision
is a pure function of the order's history and the command; a refusal appends nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

import msgspec

from orders.domain.callers import ANONYMOUS_OWNER, Caller
from orders.domain.commands import (
    CancelRequest,
    DeliverRequest,
    LifecycleRequest,
    OrderCommand,
    PayRequest,
    ShipRequest,
)
from orders.domain.events import (
    LIFECYCLE_EVENTS,
    LifecycleEvent,
    OrderCancelled,
    OrderCreated,
    OrderDelivered,
    OrderEvent,
    OrderPaid,
    OrderShipped,
)
from orders.domain.fingerprint import command_fingerprint

Status = Literal["created", "paid", "shipped", "delivered", "cancelled"]
Action = Literal["pay", "ship", "deliver", "cancel"]

TRANSITIONS: Final[dict[tuple[Status, Action], Status]] = {
    ("created", "pay"): "paid",
    ("paid", "ship"): "shipped",
    ("shipped", "deliver"): "delivered",
    ("created", "cancel"): "cancelled",
    ("paid", "cancel"): "cancelled",
}
"""(status, action) -> the status after it; a pair not here is an invalid transition."""

ACTIONS: Final[tuple[Action, ...]] = ("pay", "ship", "deliver", "cancel")
STATUSES: Final[tuple[Status, ...]] = ("created", "paid", "shipped", "delivered", "cancelled")

STATUS_AFTER: Final[dict[str, Status]] = {
    "OrderCreated": "created",
    "OrderPaid": "paid",
    "OrderShipped": "shipped",
    "OrderDelivered": "delivered",
    "OrderCancelled": "cancelled",
}
"""The status each event type leaves the order in (the projection's SQL says the same)."""

_ACTION_OF: Final[dict[type[LifecycleRequest], Action]] = {
    PayRequest: "pay",
    ShipRequest: "ship",
    DeliverRequest: "deliver",
    CancelRequest: "cancel",
}

_OWNER_ACTIONS: Final[frozenset[Action]] = frozenset({"cancel"})


def action_of(request: LifecycleRequest) -> Action:
    return _ACTION_OF[type(request)]


def allowed_actions(status: Status) -> list[Action]:
    """What may be done to an order in `status` now, in lifecycle order."""
    return [action for action in ACTIONS if (status, action) in TRANSITIONS]


class RecordedCommand(msgspec.Struct, frozen=True):
    """A command recorded on the order: the version of its event and its payload's
    fingerprint, so a retry with its key replays exactly that outcome."""

    version: int
    fingerprint: str


class OrderState(msgspec.Struct, frozen=True):
    """An order as its stream has made it, up to `version`."""

    created: OrderCreated
    status: Status
    version: int
    updated_at: datetime
    commands: dict[tuple[str, str], RecordedCommand]
    """(caller, key) -> what that caller's key recorded on this order."""

    @property
    def owner(self) -> str:
        return self.created.owner


class NotAnOrder(Exception):
    """The stream holds no order (a rejected create, or nothing)."""


class InvalidTransition(Exception):
    """The action is not allowed in the order's current status."""

    def __init__(self, status: Status, action: Action) -> None:
        super().__init__(f"an order that is {status} cannot be {_PAST[action]}")
        self.status = status
        self.action = action
        self.allowed = allowed_actions(status)


class AmountMismatch(Exception):
    """A payment whose amount is not the order's total."""

    def __init__(self, amount: int, total: int) -> None:
        super().__init__(f"the amount {amount} is not the order's total {total}")
        self.amount = amount
        self.total = total


class KeyReused(Exception):
    """The caller's key already stands for another command or payload on this order."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"the key {request_id!r} belongs to another request on this order")
        self.request_id = request_id


_PAST: Final[dict[Action, str]] = {
    "pay": "paid",
    "ship": "shipped",
    "deliver": "delivered",
    "cancel": "cancelled",
}


def start(created: OrderCreated) -> OrderState:
    return OrderState(
        created=created,
        status="created",
        version=1,
        updated_at=created.created_at,
        commands={},
    )


def evolve(state: OrderState, event: LifecycleEvent, version: int) -> OrderState:
    """The state after `event`, recorded at `version`."""
    commands = dict(state.commands)
    commands[(event.by, event.request_id)] = RecordedCommand(version, event.fingerprint)
    return msgspec.structs.replace(
        state,
        status=STATUS_AFTER[type(event).__name__],
        version=version,
        updated_at=event.occurred_at,
        commands=commands,
    )


def fold(events: list[OrderEvent], *, upto: int | None = None) -> OrderState:
    """The order that `events` (a stream, in version order) make, up to version `upto` (all
    of them when None); NotAnOrder when the stream starts with anything but OrderCreated."""
    if not events or not isinstance(events[0], OrderCreated):
        raise NotAnOrder
    state = start(events[0])
    for version, event in enumerate(events[1:], start=2):
        if upto is not None and version > upto:
            break
        if not isinstance(event, LIFECYCLE_EVENTS):
            raise NotAnOrder  # a stream starts once: nothing but lifecycle events follow
        state = evolve(state, event, version)
    return state


def may(caller: Caller, action: Action, order_owner: str) -> bool:
    """Who may do what: admins and the fulfilment role everything, the owner only cancel. The
    anonymous caller (`ORDERS_AUTH=none`, one caller for everyone) everything."""
    if caller.admin or caller.fulfilment or caller.owner == ANONYMOUS_OWNER:
        return True
    return caller.owner == order_owner and action in _OWNER_ACTIONS


def recorded_command(state: OrderState, command: OrderCommand) -> RecordedCommand | None:
    """What this caller's key already recorded on the order; KeyReused when it recorded
    another command or payload."""
    recorded = state.commands.get((command.by, command.request_id))
    if recorded is not None and recorded.fingerprint != command_fingerprint(command.request):
        raise KeyReused(command.request_id)
    return recorded


def decide(state: OrderState, command: OrderCommand, *, now: datetime) -> LifecycleEvent:
    """The event that `command` makes of the order, or InvalidTransition / AmountMismatch."""
    request = command.request
    action = action_of(request)
    if (state.status, action) not in TRANSITIONS:
        raise InvalidTransition(state.status, action)
    order_id, by, key = state.created.order_id, command.by, command.request_id
    fingerprint = command_fingerprint(request)
    if isinstance(request, PayRequest):
        if request.amount != state.created.total:
            raise AmountMismatch(request.amount, state.created.total)
        return OrderPaid(order_id, now, by, key, fingerprint, request.amount, request.reference)
    if isinstance(request, ShipRequest):
        return OrderShipped(order_id, now, by, key, fingerprint, request.carrier, request.tracking)
    if isinstance(request, DeliverRequest):
        return OrderDelivered(order_id, now, by, key, fingerprint)
    refund = state.created.total if state.status == "paid" else 0
    return OrderCancelled(order_id, now, by, key, fingerprint, request.reason, refund)
