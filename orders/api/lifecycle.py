"""The lifecycle routes: pay, ship, deliver and cancel an order (each idempotent per caller's key
on that order), and the order's history.

A command's checks run in RFC 9110's order: identity (401, before the handler), then existence
(404, byte-identical for an unknown order and another caller's), then whether the caller may
do this (403), then the key and the body (400, 415), then `If-Match` (412), then the rule (409,
422). A retry with a key already recorded on the order replays its outcome before any
precondition, however the order has moved on since.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, NamedTuple
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from orders.api import problems
from orders.api.body import decode_flat
from orders.api.keys import IDEMPOTENCY_KEY, REQUEST_ID, request_key
from orders.api.observability import count_command
from orders.api.openapi import LifecycleCommandOperation
from orders.api.preconditions import etag, if_match
from orders.api.problems import ProblemError, problem_response, problem_spec
from orders.api.rendering import ORDERS_PATH, REPLAYED_HEADER, key_reused_problem
from orders.api.services import Services
from orders.domain.callers import Caller
from orders.domain.commands import (
    CancelRequest,
    DeliverRequest,
    LifecycleRequest,
    OrderCommand,
    PayRequest,
    ShipRequest,
)
from orders.domain.events import decode_event, event_type, public_data
from orders.domain.lifecycle import Action, AmountMismatch, InvalidTransition, KeyReused
from orders.order_lifecycle import (
    CommandOutcome,
    Forbidden,
    IfMatch,
    OrderNotFound,
    PreconditionFailed,
)
from orders.readmodel import OrderView

MAX_COMMAND_BODY_BYTES: Final = 4 * 1024

_encoder = msgspec.json.Encoder()


class HistoryEntry(msgspec.Struct, frozen=True):
    """One event of an order's history: its type, its version in the order's stream, when the
    store recorded it, and its public facts."""

    type: str
    version: int
    time: datetime
    data: dict[str, Any]


class OrderHistory(msgspec.Struct, frozen=True):
    order_id: UUID
    events: list[HistoryEntry]


def _not_found(order_id: str) -> ProblemError:
    """The same answer for an order that does not exist and for another caller's."""
    return ProblemError(problems.ORDER_NOT_FOUND, f"there is no order {order_id!r}")


def parse_order_id(order_id: str) -> UUID:
    try:
        return UUID(order_id)
    except ValueError:
        raise _not_found(order_id) from None


def order_response(view: OrderView, *, replayed: bool | None = None) -> Response[bytes]:
    """200 with the order and its strong ETag; with `replayed`, the replay header too."""
    headers = {"ETag": etag(view.version)}
    if replayed is not None:
        headers[REPLAYED_HEADER] = "true" if replayed else "false"
    return Response(_encoder.encode(view), media_type="application/json", headers=headers)


class _Parsed(NamedTuple):
    command: OrderCommand
    precondition: IfMatch | None


def _parse_command(
    request: Request[Any, Any, Any],
    raw: bytes,
    caller: Caller,
    decoder: msgspec.json.Decoder[Any],
) -> _Parsed:
    """The command a request makes: its key (every field of both key headers), its body
    (JSON; an empty body is `{}`) and its `If-Match`. ProblemError (400, 415) when it makes
    none."""
    headers = request.headers
    key = request_key(headers.getall(IDEMPOTENCY_KEY, []), headers.getall(REQUEST_ID, []))
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if raw and media_type != "application/json" and not media_type.endswith("+json"):
        raise ProblemError(
            problems.UNSUPPORTED_MEDIA_TYPE,
            "send the command's body as JSON with Content-Type: application/json",
        )
    body: LifecycleRequest = decode_flat(raw or b"{}", decoder)
    precondition = if_match(headers.getall("if-match", []))
    return _Parsed(OrderCommand(request_id=key, by=caller.owner, request=body), precondition)


async def _command(
    action: Action,
    decoder: msgspec.json.Decoder[Any],
    request: Request[Any, Any, Any],
    order_id: str,
    caller: Caller,
    services: Services,
) -> Response[bytes]:
    parsed_id = parse_order_id(order_id)
    lifecycle = services.lifecycle
    raw = await request.body()
    # Parsed first, raised only once the order is known to exist and the caller may act on it.
    try:
        parsed: _Parsed | ProblemError = _parse_command(request, raw, caller, decoder)
    except ProblemError as refused:
        parsed = refused
    try:
        known = None
        if isinstance(parsed, _Parsed):
            known = lifecycle.replay_from_memory(caller, parsed_id, parsed.command)
        if known is None:
            order = await lifecycle.locate(caller, parsed_id, action)
            if isinstance(parsed, ProblemError):
                raise parsed
            known = await lifecycle.run(caller, order, parsed.command, parsed.precondition)
    except OrderNotFound:
        count_command(action, "not_found")
        raise _not_found(order_id) from None
    except Forbidden:
        count_command(action, "forbidden")
        raise ProblemError(
            problems.FORBIDDEN,
            f"this caller may not {action} this order: paying, shipping and delivering need "
            "the fulfilment role; an owner may cancel",
        ) from None
    except KeyReused as reused:
        count_command(action, "key_reused")
        return problem_response(
            key_reused_problem(reused.request_id, f"{_KEY_REUSED}; use a new key for a new command")
        )
    except PreconditionFailed as failed:
        count_command(action, "precondition_failed")
        current = etag(failed.version)
        return problem_response(
            problems.PRECONDITION_FAILED.problem(
                f"If-Match does not match the order's current ETag {current}; read the order "
                "again and decide again"
            ),
            headers={"ETag": current},
        )
    except InvalidTransition as refused:
        count_command(action, "invalid_transition")
        return problem_response(
            problems.INVALID_TRANSITION.problem(
                str(refused),
                order_status=refused.status,
                allowed_actions=list(refused.allowed),
            )
        )
    except AmountMismatch as mismatch:
        count_command(action, "amount_mismatch")
        return problem_response(problems.AMOUNT_MISMATCH.problem(str(mismatch)))
    return _answered(action, known)


def _answered(action: Action, outcome: CommandOutcome) -> Response[bytes]:
    count_command(action, "replayed" if outcome.replayed else "applied")
    return order_response(outcome.view, replayed=outcome.replayed)


_UNAUTHENTICATED: Final = problem_spec(
    "No valid identity (ORDERS_AUTH jwt or gateway); nothing is recorded or read"
)
_COMMON_ERRORS: Final = {
    400: problem_spec("Missing or malformed key, body or If-Match; nothing is recorded"),
    401: _UNAUTHENTICATED,
    403: problem_spec("The caller may read the order but not do this to it"),
    404: problem_spec("No order of the caller's has this id"),
    409: problem_spec(
        "`/problems/invalid-transition`: not allowed in the order's current status "
        "(`order_status`, `allowed_actions` say what is); or `/problems/request-in-progress`: "
        "a command on this order is still being written, retry after Retry-After"
    ),
    412: problem_spec("If-Match does not match the order's current ETag (sent back in `ETag`)"),
    413: problem_spec("Body over 4 KiB; nothing is recorded"),
    415: problem_spec("Body is not JSON; nothing is recorded"),
    503: problem_spec(
        "The database is unavailable, or the read model is behind (async projection); nothing "
        "is recorded; retry after Retry-After seconds"
    ),
}
_KEY_REUSED: Final = "the key was used on this order for another command or payload"


def _command_route(
    action: Action, body: type[LifecycleRequest], summary: str, rule: str
) -> HTTPRouteHandler:
    decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(body)

    async def handle(
        request: Request[Any, Any, Any],
        order_id: FromPath[str],
        caller: NamedDependency[Caller],
        services: NamedDependency[Services],
    ) -> Response[bytes]:
        return await _command(action, decoder, request, order_id, caller, services)

    handle.__name__ = f"{action}_order"
    return post(
        f"{ORDERS_PATH}/{{order_id:str}}/{action}",
        status_code=200,
        request_max_body_size=MAX_COMMAND_BODY_BYTES,
        summary=summary,
        description=f"{rule} Idempotent per (caller, key, order): a retry with the same key "
        "and body gets the recorded answer (same status, body and ETag, "
        "`Idempotent-Replayed: true`) however the order has moved on since.",
        operation_id=f"{action}Order",
        operation_class=LifecycleCommandOperation,
        request_body_type=body,
        tags=["lifecycle"],
        responses={
            200: ResponseSpec(OrderView, description="The order as the command left it"),
            **_COMMON_ERRORS,
            422: problem_spec(
                _KEY_REUSED
                + ("; or the amount is not the order's total" if action == "pay" else "")
            ),
        },
    )(handle)


COMMAND_ROUTES: Final = [
    _command_route(
        "pay",
        PayRequest,
        "Record the order's payment",
        "Fulfilment or admin. `created` -> `paid`; `amount` must be the order's total.",
    ),
    _command_route(
        "ship",
        ShipRequest,
        "Record that the order has shipped",
        "Fulfilment or admin. `paid` -> `shipped`.",
    ),
    _command_route(
        "deliver",
        DeliverRequest,
        "Record the order's delivery",
        "Fulfilment or admin. `shipped` -> `delivered` (final).",
    ),
    _command_route(
        "cancel",
        CancelRequest,
        "Cancel the order",
        "The owner, fulfilment or admin. `created` or `paid` -> `cancelled` (final); from "
        "`paid` the event records the refund owed.",
    ),
]


@get(
    f"{ORDERS_PATH}/{{order_id:str}}/history",
    summary="The order's events, oldest first",
    tags=["lifecycle"],
    responses={
        400: problem_spec("A malformed header; see `detail`"),
        401: _UNAUTHENTICATED,
        404: problem_spec("No order of the caller's has this id"),
        503: problem_spec(
            "The database is unavailable, or the read model is behind; retry after Retry-After"
        ),
    },
)
async def order_history(
    order_id: FromPath[str],
    caller: NamedDependency[Caller],
    services: NamedDependency[Services],
) -> OrderHistory:
    parsed_id = parse_order_id(order_id)
    read_model = services.read_model
    await read_model.wait_for_writes()
    located = await read_model.locate(caller, parsed_id)
    if located is None:
        raise _not_found(order_id)
    entries = []
    for recorded in located.events:
        event = decode_event(recorded.data)
        entries.append(
            HistoryEntry(
                type=event_type(event),
                version=recorded.version,
                time=recorded.recorded_at,
                data=public_data(event),
            )
        )
    return OrderHistory(parsed_id, entries)
