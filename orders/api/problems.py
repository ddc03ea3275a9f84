"""RFC 9457 problem details: every error the API answers, each kind with a stable `type`."""

from __future__ import annotations

from typing import Final, NamedTuple

import msgspec
from litestar import Response
from litestar.openapi.datastructures import ResponseSpec

MEDIA_TYPE: Final = "application/problem+json"


class ProblemKind(NamedTuple):
    slug: str
    status: int
    title: str

    @property
    def type(self) -> str:
        return f"/problems/{self.slug}"

    def problem(
        self,
        detail: str,
        *,
        request_id: str | None = None,
        reason: str | None = None,
        order_status: str | None = None,
        allowed_actions: list[str] | None = None,
    ) -> Problem:
        """A problem of this kind."""
        return Problem(
            self.type,
            self.title,
            self.status,
            detail,
            request_id,
            reason,
            order_status,
            allowed_actions,
        )


INVALID_KEY = ProblemKind("invalid-idempotency-key", 400, "Invalid idempotency key")
AMBIGUOUS_KEY = ProblemKind("ambiguous-idempotency-key", 400, "Ambiguous idempotency key")
CONFLICTING_KEYS = ProblemKind(
    "conflicting-idempotency-keys", 400, "Idempotency-Key and X-Request-Id differ"
)
INVALID_BODY = ProblemKind("invalid-body", 400, "Invalid request body")
INVALID_PARAMETER = ProblemKind("invalid-parameter", 400, "Invalid parameter")
UNAUTHENTICATED = ProblemKind("unauthenticated", 401, "Authentication required")
NOT_FOUND = ProblemKind("not-found", 404, "Not found")
FORBIDDEN = ProblemKind("forbidden", 403, "Not allowed")
ORDER_NOT_FOUND = ProblemKind("order-not-found", 404, "Order not found")
METHOD_NOT_ALLOWED = ProblemKind("method-not-allowed", 405, "Method not allowed")
REQUEST_IN_PROGRESS = ProblemKind("request-in-progress", 409, "Request still in progress")
INVALID_TRANSITION = ProblemKind("invalid-transition", 409, "Not allowed in the order's status")
PRECONDITION_FAILED = ProblemKind("precondition-failed", 412, "Precondition failed")
BODY_TOO_LARGE = ProblemKind("body-too-large", 413, "Request body too large")
UNSUPPORTED_MEDIA_TYPE = ProblemKind("unsupported-media-type", 415, "Unsupported media type")
HEADERS_TOO_LARGE = ProblemKind("headers-too-large", 431, "Request header fields too large")
ORDER_REJECTED = ProblemKind("order-rejected", 422, "Order rejected")
KEY_REUSED = ProblemKind("idempotency-key-reused", 422, "Idempotency key reused")
AMOUNT_MISMATCH = ProblemKind("amount-mismatch", 422, "Amount is not the order's total")
CLIENT_ERROR = ProblemKind("client-error", 400, "Bad request")
SERVICE_UNAVAILABLE = ProblemKind("service-unavailable", 503, "Service unavailable")
INTERNAL_ERROR = ProblemKind("internal-error", 500, "Internal error")

KINDS: Final = (
    INVALID_KEY,
    AMBIGUOUS_KEY,
    CONFLICTING_KEYS,
    INVALID_BODY,
    INVALID_PARAMETER,
    UNAUTHENTICATED,
    NOT_FOUND,
    FORBIDDEN,
    ORDER_NOT_FOUND,
    METHOD_NOT_ALLOWED,
    REQUEST_IN_PROGRESS,
    INVALID_TRANSITION,
    PRECONDITION_FAILED,
    BODY_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    HEADERS_TOO_LARGE,
    ORDER_REJECTED,
    KEY_REUSED,
    AMOUNT_MISMATCH,
    CLIENT_ERROR,
    SERVICE_UNAVAILABLE,
    INTERNAL_ERROR,
)


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    """The body of every error answer. Extension members are omitted when they do not apply."""

    type: str
    title: str
    status: int
    detail: str
    request_id: str | None = None
    reason: str | None = None
    order_status: str | None = None
    """An invalid transition: the order's status now."""
    allowed_actions: list[str] | None = None
    """An invalid transition: what the order's status allows now (maybe nothing)."""


class ProblemError(Exception):
    """Raise to answer with a problem; `retry_after` (seconds) adds a Retry-After header,
    `headers` any other."""

    def __init__(
        self,
        kind: ProblemKind,
        detail: str,
        *,
        request_id: str | None = None,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.problem = kind.problem(detail, request_id=request_id)
        self.headers = dict(headers or {})
        if retry_after is not None:
            self.headers["Retry-After"] = str(retry_after)


_encoder = msgspec.json.Encoder()


def problem_response(problem: Problem, *, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        _encoder.encode(problem),
        status_code=problem.status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def problem_spec(description: str) -> ResponseSpec:
    """An error answer as the OpenAPI document describes it."""
    return ResponseSpec(Problem, description=description, media_type=MEDIA_TYPE)
