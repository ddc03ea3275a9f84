"""The create-order use case: decide, append under the request id, or replay what was recorded."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from orders.domain.commands import CreateOrder, OrderRequest
from orders.domain.decide import decide
from orders.domain.events import OrderEvent, decode_event, encode_event, event_type
from orders.eventstore import EventStore, NewEvent


class Outcome(msgspec.Struct, frozen=True):
    """The recorded outcome of a request id, and whether this call merely replayed it."""

    event: OrderEvent
    replayed: bool


class KeyReused(Exception):
    """The request id already stands for a request with a different payload."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"the key {request_id!r} belongs to another request")
        self.request_id = request_id


class EventMetadata(msgspec.Struct, frozen=True):
    request_id: str
    fingerprint: str
    causation_id: str


def _utc_now() -> datetime:
    return datetime.now(UTC)


class OrderCreator:
    """Creates orders exactly once per request id, whatever races or retries happen.

    The first request for an id appends its outcome as the first event of the id's stream
    (expected version "no stream"); the database's unique (stream, version) picks one winner
    among concurrent requests, on any replica. Every other request gets the winner's event
    back from the same statement and answers with the same outcome.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        inline_projection: str = "",
        clock: Callable[[], datetime] = _utc_now,
        new_order_id: Callable[[], uuid.UUID] = uuid.uuid4,
    ) -> None:
        self._store = store
        self._inline_projection = inline_projection
        self._clock = clock
        self._new_order_id = new_order_id

    async def create(self, request_id: str, request: OrderRequest) -> Outcome:
        """Raises KeyReused, or the store's AppendBlocked/StoreUnavailable."""
        command = CreateOrder.from_request(request_id, request)
        event = decide(command, order_id=self._new_order_id(), now=self._clock())
        metadata = EventMetadata(request_id, event.fingerprint, causation_id=request_id)
        new_event = NewEvent(event_type(event), encode_event(event), msgspec.json.encode(metadata))
        start = await self._store.start_stream(request_id, new_event, then=self._inline_projection)
        if start.started:
            return Outcome(event, replayed=False)
        first = decode_event(start.first.data)
        if first.fingerprint != event.fingerprint:
            raise KeyReused(request_id)
        return Outcome(first, replayed=True)
