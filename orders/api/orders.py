"""The order routes: create (idempotent), read one, list, count."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter

from orders.api import problems
from orders.api.body import OrderRequestDTO
from orders.api.keys import IDEMPOTENCY_KEY, REQUEST_ID, request_key
from orders.api.lifecycle import order_response, parse_order_id
from orders.api.observability import KEY_REUSE_CONFLICTS, count_outcome
from orders.api.openapi import CreateOrderOperation, string_parameter
from orders.api.preconditions import etag, none_match
from orders.api.problems import ProblemError, problem_spec
from orders.api.rendering import (
    ORDERS_PATH,
    key_reused_problem,
    outcome_response,
)
from orders.api.services import Services
from orders.create_order import KeyReused
from orders.domain.callers import Caller
from orders.domain.commands import OrderRequest
from orders.domain.lifecycle import STATUSES
from orders.readmodel import CreatedOrder, OrderPage, OrderView, ReadModel

MAX_BODY_BYTES: Final = 64 * 1024
MAX_PAGE: Final = 500
CURSOR_PATTERN: Final = "[0-9]{1,18}"

ConsistencyHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Consistency",
        required=False,
        description="`strong` (the default): the answer reflects every write acknowledged "
        "before the request; with the async projection the read may wait for it, up to "
        "ORDERS_READ_WAIT_SECONDS, then 503. `eventual`: answer at once, possibly without "
        "the latest writes.",
        schema_extra=string_parameter(enum=["strong", "eventual"]),
    ),
]


async def _read_model_after_writes(read_model: ReadModel, consistency: str | None) -> ReadModel:
    """The read model once it holds every write acknowledged before this request, unless the
    client accepts a possibly stale answer (`Consistency`). Called by each read route after
    the caller is known: an unauthenticated request waits for nothing."""
    mode = "strong" if consistency is None else consistency.strip().lower()
    if mode not in {"strong", "eventual"}:
        raise ProblemError(problems.INVALID_PARAMETER, "`Consistency` is `strong` or `eventual`")
    if mode == "strong":
        await read_model.wait_for_writes()  # ProjectionBehind: 503 (orders.api.errors)
    return read_model


class OrderCount(msgspec.Struct, frozen=True):
    count: int


_UNAUTHENTICATED: Final = problem_spec(
    "No valid identity (ORDERS_AUTH jwt or gateway); nothing is recorded or read. "
    "`WWW-Authenticate` says what to send"
)
_CREATE_RESPONSES: Final = {
    201: ResponseSpec(CreatedOrder, description="Created, or the recorded creation replayed"),
    400: problem_spec("Missing or malformed key, malformed body; nothing is recorded"),
    401: _UNAUTHENTICATED,
    409: problem_spec("The first request with this key is still being written; retry"),
    413: problem_spec("Body over 64 KiB; nothing is recorded"),
    415: problem_spec("Body is not JSON; nothing is recorded"),
    422: problem_spec("The order was rejected (recorded), or the key belongs to another payload"),
    503: problem_spec("The database is unavailable; retry after Retry-After seconds"),
}
_READ_ERRORS: Final = {
    400: problem_spec("A malformed parameter or header; see `detail`"),
    401: _UNAUTHENTICATED,
    503: problem_spec(
        "The database is unavailable, or the read model is behind; retry after Retry-After"
    ),
}


async def _require_json(request: Request[Any, Any, Any]) -> None:
    """Refuse a body that is not JSON before it is read (415, nothing recorded).

    A before-request hook, not a guard: Litestar copies the route handler for every guard it
    runs (~30 us a request), and runs a sync guard in a worker thread.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise ProblemError(
            problems.UNSUPPORTED_MEDIA_TYPE,
            "send the order as JSON with Content-Type: application/json",
        )


class OrdersController(Controller):
    path = ORDERS_PATH
    tags = ["orders"]  # noqa: RUF012 (Litestar reads this class attribute)

    @post(
        ["/", "/create"],
        before_request=_require_json,
        dto=OrderRequestDTO,
        return_dto=None,
        request_max_body_size=MAX_BODY_BYTES,
        status_code=201,
        responses=_CREATE_RESPONSES,
        operation_class=CreateOrderOperation,
        summary="Create an order, exactly once per key",
        description="`/create` is the older path of the same operation.",
    )
    async def create_order(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[OrderRequest],
        caller: NamedDependency[Caller],
        services: NamedDependency[Services],
    ) -> Response[bytes]:
        # Every field of each header: a header parameter would hand over only the first of two.
        headers = request.headers
        key = request_key(headers.getall(IDEMPOTENCY_KEY, []), headers.getall(REQUEST_ID, []))
        try:
            outcome = await services.creator.create(key, data, caller.owner)
        except KeyReused:
            KEY_REUSE_CONFLICTS.inc()
            return problems.problem_response(key_reused_problem(key))
        count_outcome(outcome)
        return outcome_response(outcome)

    @get("/count", summary="How many orders the caller has", responses=_READ_ERRORS)
    async def count(
        self,
        caller: NamedDependency[Caller],
        services: NamedDependency[Services],
        consistency: ConsistencyHeader = None,
    ) -> OrderCount:
        read_model = await _read_model_after_writes(services.read_model, consistency)
        return OrderCount(await read_model.count_orders(caller))

    @get(
        "/{order_id:str}",
        summary="One order, as it stands now",
        description="Sends the order's version as a strong `ETag`; `If-None-Match` with it "
        "answers 304.",
        responses={
            200: ResponseSpec(OrderView, description="The order"),
            304: ResponseSpec(None, description="The order is still at the version named"),
            **_READ_ERRORS,
            404: problem_spec("No order of the caller's has this id"),
        },
    )
    async def get_order(
        self,
        request: Request[Any, Any, Any],
        order_id: FromPath[str],
        caller: NamedDependency[Caller],
        services: NamedDependency[Services],
        consistency: ConsistencyHeader = None,
    ) -> Response[bytes]:
        parsed = parse_order_id(order_id)
        read_model = await _read_model_after_writes(services.read_model, consistency)
        order = await read_model.get_order(caller, parsed)
        if order is None:
            raise ProblemError(problems.ORDER_NOT_FOUND, f"there is no order {order_id!r}")
        if none_match(request.headers.getall("if-none-match", []), order.version):
            return Response(b"", status_code=304, headers={"ETag": etag(order.version)})
        return order_response(order)

    @get(
        "/",
        summary="The caller's orders, oldest first, a page at a time",
        responses=_READ_ERRORS,
    )
    async def list_orders(
        self,
        caller: NamedDependency[Caller],
        services: NamedDependency[Services],
        consistency: ConsistencyHeader = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description="Page size")] = 50,
        after: Annotated[
            str | None,
            QueryParameter(
                description="The `next_after` of the previous page; omit for the first",
                schema_extra=string_parameter(pattern=f"^{CURSOR_PATTERN}$"),
            ),
        ] = None,
        status: Annotated[
            str | None,
            QueryParameter(
                description="Only the orders in this status",
                schema_extra=string_parameter(enum=list(STATUSES)),
            ),
        ] = None,
    ) -> OrderPage:
        cursor = _cursor(after)
        if status is not None and status not in STATUSES:
            raise ProblemError(
                problems.INVALID_PARAMETER, f"`status` is one of {', '.join(STATUSES)}"
            )
        read_model = await _read_model_after_writes(services.read_model, consistency)
        return await read_model.list_orders(caller, after=cursor, limit=limit, status=status)


def _cursor(after: str | None) -> int:
    if after is None:
        return 0
    if not re.fullmatch(CURSOR_PATTERN, after):
        raise ProblemError(problems.INVALID_PARAMETER, "`after` must be a `next_after` value")
    return int(after)
