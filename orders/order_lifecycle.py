"""The lifecycle use case: pay, ship, deliver or cancel an order, exactly once per caller's key.

Every command runs the same way: find the order and its stream, fold the stream, look the
caller's key up in it (a retry replays what the key recorded), check the precondition, decide,
and append the one new event at the version read (compare-and-set on the unique (stream,
version)). A writer that loses the race reads the stream again and decides again, so of two
different commands racing on one order one makes the transition and the other is answered
from the order as the winner left it; two racers with one key both get the winner's outcome.
The key and the payload's fingerprint are in the appended event itself: one statement records
the transition and what a retry needs, and no separate keyspace can disagree with the stream.

An answer decided from the stream as read, not from an append of this call's (a replay, a
refusal), waits for the replication barrier (`EventStore.ensure_replicated`) first: the stream
may hold an event whose commit gave up waiting for the synchronous standbys, which a failover
would lose. An append needs none: its own commit waits for every event before it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, NamedTuple
from uuid import UUID

from orders.domain.callers import Caller
from orders.domain.commands import LifecycleRequest, OrderCommand
from orders.domain.events import (
    LifecycleEvent,
    OrderEvent,
    decode_event,
    encode_event,
    event_type,
)
from orders.domain.lifecycle import (
    Action,
    AmountMismatch,
    InvalidTransition,
    KeyReused,
    NotAnOrder,
    OrderState,
    action_of,
    decide,
    evolve,
    fold,
    may,
    recorded_command,
)
from orders.eventstore import (
    AppendBlocked,
    Batch,
    EventStore,
    GroupAppend,
    NewEvent,
    WrongExpectedVersion,
)
from orders.readmodel import LocatedOrder, OrderView, ReadModel
from orders.recorded_outcomes import RecordedOutcomes

# Each lost race re-reads the stream, where the winner's event usually settles the command (a
# replay, a refusal, a failed precondition); only a stream written faster than it can be read
# exhausts this, and that answers 409 with Retry-After, as a stuck first request does.
_ATTEMPTS: Final = 8


class CommandOutcome(NamedTuple):
    """The order as the command left it, and whether this call merely replayed the command."""

    view: OrderView
    replayed: bool


class _Recorded(NamedTuple):
    """What a key recorded on an order, as this process saw it: the order's owner, the command
    itself (equal exactly when its fingerprint is, and cheaper to compare), and its outcome."""

    owner: str
    request: LifecycleRequest
    view: OrderView


class OrderNotFound(Exception):
    """No order with this id that the caller may see."""


class Forbidden(Exception):
    """The caller may see the order but not do this to it."""

    def __init__(self, action: Action) -> None:
        super().__init__(f"the caller may not {action} this order")
        self.action = action


class PreconditionFailed(Exception):
    """`If-Match` named another version than the order's current one."""

    def __init__(self, version: int) -> None:
        super().__init__(f"the order is at version {version}")
        self.version = version


class IfMatch(NamedTuple):
    """A parsed `If-Match`: any existing order (`*`), or one of these versions."""

    any: bool
    versions: frozenset[int]

    def matches(self, version: int) -> bool:
        return self.any or version in self.versions


_REFUSALS: Final = (KeyReused, PreconditionFailed, InvalidTransition, AmountMismatch)
"""What a command may be refused with, decided from the order's stream."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class OrderLifecycle:
    """Runs lifecycle commands over the store, finding orders through the read model."""

    def __init__(
        self,
        store: EventStore,
        read_model: ReadModel,
        *,
        inline_projection: str = "",
        clock: Callable[[], datetime] = _utc_now,
        remembered: int = 10_000,
        on_batch: Callable[[Batch], None] | None = None,
    ) -> None:
        self._store = store
        # Concurrent commands on different orders share statements and commits; each still
        # gets the answer an append of its own would (see GroupAppend).
        self._appends = GroupAppend(store, then=inline_projection, on_batch=on_batch)
        self._read_model = read_model
        self._clock = clock
        # By the caller as it is now, roles and all: a caller that has since lost a role is
        # answered from the stream, as any process without this memory would answer it.
        self._recorded: RecordedOutcomes[tuple[Caller, UUID, str], _Recorded] = RecordedOutcomes(
            remembered
        )

    def replay_from_memory(
        self, caller: Caller, order_id: UUID, command: OrderCommand
    ) -> CommandOutcome | None:
        """The outcome this process saw `command`'s key record on the order, if it did. Raises
        what `locate` and `run` would raise in that case, in the same order: Forbidden when the
        caller may not do this command to the order, KeyReused when the key recorded another
        command or payload."""
        known = self._recorded.get((caller, order_id, command.request_id))
        if known is None:
            return None
        action = action_of(command.request)
        if not may(caller, action, known.owner):
            raise Forbidden(action)
        if known.request != command.request:
            raise KeyReused(command.request_id)
        return CommandOutcome(known.view, replayed=True)

    async def locate(self, caller: Caller, order_id: UUID, action: Action) -> LocatedOrder:
        """The order, once every write acknowledged before is readable; OrderNotFound when the
        caller may not see it, Forbidden when it may see it but not do `action` to it."""
        await self._read_model.wait_for_writes()
        located = await self._read_model.locate(caller, order_id)
        if located is None:
            raise OrderNotFound
        if not may(caller, action, located.owner):
            raise Forbidden(action)
        return located

    async def run(
        self,
        caller: Caller,
        order: LocatedOrder,
        command: OrderCommand,
        if_match: IfMatch | None = None,
    ) -> CommandOutcome:
        """Replay what the command's key recorded on `order`, or decide and append.

        Raises KeyReused, PreconditionFailed, the domain's InvalidTransition and
        AmountMismatch, or the store's AppendBlocked and StoreUnavailable.
        """
        stream_id = order.events[0].stream_id
        recorded = order.events
        for _ in range(_ATTEMPTS):
            events = [decode_event(event.data) for event in recorded]
            state = _fold(events)
            try:
                known = recorded_command(state, command)
                event = None if known is not None else self._decide(state, command, if_match)
            except _REFUSALS:
                # A refusal tells of the order's state as read: only once the standbys hold it.
                await self._store.ensure_replicated()
                raise
            if event is None:
                assert known is not None
                # Read, not appended, here: answered only once the standbys hold it.
                await self._store.ensure_replicated()
                view = OrderView.of_state(_fold(events, upto=known.version))
                self._remember(caller, order.owner, command, view)
                return CommandOutcome(view, replayed=True)
            new_event = NewEvent(event_type(event), encode_event(event))
            try:
                await self._appends.append(stream_id, new_event, state.version)
            except WrongExpectedVersion:
                recorded = await self._store.read_stream(stream_id)
                continue
            view = OrderView.of_state(evolve(state, event, state.version + 1))
            self._remember(caller, order.owner, command, view)
            return CommandOutcome(view, replayed=False)
        raise AppendBlocked(stream_id)

    def _decide(
        self, state: OrderState, command: OrderCommand, if_match: IfMatch | None
    ) -> LifecycleEvent:
        if if_match is not None and not if_match.matches(state.version):
            raise PreconditionFailed(state.version)
        return decide(state, command, now=self._clock())

    def _remember(self, caller: Caller, owner: str, command: OrderCommand, view: OrderView) -> None:
        key = (caller, view.order_id, command.request_id)
        self._recorded.remember(key, _Recorded(owner, command.request, view))


def _fold(events: list[OrderEvent], *, upto: int | None = None) -> OrderState:
    try:
        return fold(events, upto=upto)
    except NotAnOrder:
        # The read model holds only created orders, and streams are append-only.
        raise AssertionError("an order's stream does not hold an order") from None
