"""HTTP answers rendered from recorded events, so a replay renders the very same bytes."""

from __future__ import annotations

from typing import Final

import msgspec
from litestar import Response

from orders.api.preconditions import etag
from orders.api.problems import KEY_REUSED, MEDIA_TYPE, ORDER_REJECTED, Problem
from orders.create_order import Outcome
from orders.domain.events import OrderCreated, OrderRejected
from orders.readmodel import CreatedOrder

ORDERS_PATH: Final = "/api/v1/orders"
REPLAYED_HEADER: Final = "Idempotent-Replayed"


_encoder = msgspec.json.Encoder()


def rejection_problem(event: OrderRejected) -> Problem:
    return ORDER_REJECTED.problem(event.detail, request_id=event.request_id, reason=event.reason)


def key_reused_problem(
    request_id: str,
    detail: str = "this key belongs to another request with a different payload; "
    "use a new key for a new request",
) -> Problem:
    return KEY_REUSED.problem(detail, request_id=request_id)


def outcome_response(outcome: Outcome) -> Response[bytes]:
    """201 with the order, or 422 with the recorded rejection; the replay header says which
    call this was."""
    headers = {REPLAYED_HEADER: "true" if outcome.replayed else "false"}
    event = outcome.event
    if isinstance(event, OrderCreated):
        headers["Location"] = f"{ORDERS_PATH}/{event.order_id}"
        headers["ETag"] = etag(1)  # a new order's stream is at version 1
        return Response(
            _encoder.encode(CreatedOrder.of(event)),
            status_code=201,
            media_type="application/json",
            headers=headers,
        )
    return Response(
        _encoder.encode(rejection_problem(event)),
        status_code=ORDER_REJECTED.status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )
