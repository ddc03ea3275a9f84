"""The create-order use case: decide, append under the caller's key, or replay what was recorded."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from orders.domain.callers import ANONYMOUS_OWNER
from orders.domain.commands import CreateOrder, OrderRequest
from orders.domain.decide import decide
from orders.domain.events import Creation, decode_creation, encode_event, event_type
from orders.domain.fingerprint import fingerprint
from orders.domain.streams import order_stream_id
from orders.eventstore import Batch, EventStore, GroupCommit, NewEvent
from orders.order_ids import new_order_id
from orders.recorded_outcomes import RecordedOutcomes


class Outcome(msgspec.Struct, frozen=True):
    """The recorded outcome of a caller's key, and whether this call merely replayed it."""

    event: Creation
    replayed: bool


class KeyReused(Exception):
    """The caller's key already stands for a request with a different payload."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"the key {request_id!r} belongs to another request")
        self.request_id = request_id


def _utc_now() -> datetime:
    return datetime.now(UTC)


class OrderCreator:
    """Creates orders exactly once per (caller, key), whatever races or retries happen.

    The first request for a caller's key appends its outcome as the first event of the pair's
    stream (`orders.domain.streams`, expected version "no stream"); the database's unique
    (stream, version) picks one winner among concurrent requests, on any replica. Every other
    request gets the winner's event back from the same statement and answers with the same
    outcome. Another caller's same key is another stream: it never sees this outcome.

    Concurrent creates share statements and commits (`GroupCommit`; `on_batch` sees each
    statement's size); a retry answered from `RecordedOutcomes` never reaches the database.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        inline_projection: str = "",
        clock: Callable[[], datetime] = _utc_now,
        new_order_id: Callable[[], uuid.UUID] = new_order_id,
        remembered: int = 10_000,
        on_batch: Callable[[Batch], None] | None = None,
    ) -> None:
        self._starts = GroupCommit(store, then=inline_projection, on_batch=on_batch)
        self._recorded: RecordedOutcomes[str, Creation] = RecordedOutcomes(remembered)
        self._clock = clock
        self._new_order_id = new_order_id

    async def create(
        self, request_id: str, request: OrderRequest, owner: str = ANONYMOUS_OWNER
    ) -> Outcome:
        """Raises KeyReused, or the store's AppendBlocked/StoreUnavailable."""
        command = CreateOrder.from_request(request_id, request, owner)
        stream_id = order_stream_id(owner, request_id)
        known = self._recorded.get(stream_id)
        if known is not None:
            return _replay(known, fingerprint(command))
        event = decide(command, order_id=self._new_order_id(), now=self._clock())
        # No metadata: the request id and fingerprint are in the event itself (write each
        # fact once), and nothing reads them from anywhere else.
        new_event = NewEvent(event_type(event), encode_event(event))
        start = await self._starts.start_stream(stream_id, new_event)
        recorded = event if start.started else decode_creation(start.first.data)
        self._recorded.remember(stream_id, recorded)
        if start.started:
            return Outcome(event, replayed=False)
        return _replay(recorded, event.fingerprint)


def _replay(recorded: Creation, payload_fingerprint: str) -> Outcome:
    """The recorded outcome, if this request carries the payload it was recorded for."""
    if recorded.fingerprint != payload_fingerprint:
        raise KeyReused(recorded.request_id)
    return Outcome(recorded, replayed=True)
