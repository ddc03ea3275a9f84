"""Every exception mapped, once, to a problem+json answer. No answer carries a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from orders.api import problems
from orders.api.problems import ProblemError, ProblemKind, problem_response
from orders.eventstore import AppendBlocked, StoreUnavailable
from projections.consistency import ProjectionBehind

log = logging.getLogger(__name__)

_BY_STATUS = {
    404: problems.NOT_FOUND,
    405: problems.METHOD_NOT_ALLOWED,
    413: problems.BODY_TOO_LARGE,
    415: problems.UNSUPPORTED_MEDIA_TYPE,
}

Req = Request[Any, Any, Any]


def _answer(kind: ProblemKind, detail: str, retry_after: int | None = None) -> Response[bytes]:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    problem = kind.problem(detail)
    return problem_response(problem, headers=headers)


def _problem_error(_: Req, exc: ProblemError) -> Response[bytes]:
    return problem_response(exc.problem, headers=exc.headers or None)


def _validation(request: Req, exc: ValidationException) -> Response[bytes]:
    messages = [str(item.get("message", "")) for item in exc.extra or [] if isinstance(item, dict)]
    detail = "; ".join(m for m in messages if m) or str(exc.detail)
    body_error = (
        any(isinstance(item, dict) and item.get("source") == "body" for item in exc.extra or [])
        or request.method == "POST"
    )
    kind = problems.INVALID_BODY if body_error else problems.INVALID_PARAMETER
    return _answer(kind, detail)


def _http(request: Req, exc: HTTPException) -> Response[bytes]:
    if exc.status_code >= 500:
        return _unexpected(request, exc)
    kind = _BY_STATUS.get(exc.status_code, problems.CLIENT_ERROR)
    if exc.status_code == 400 and request.method in {"POST", "PUT", "PATCH"}:
        kind = problems.INVALID_BODY  # the body could not be read or parsed
    elif kind is problems.CLIENT_ERROR:
        kind = ProblemKind(kind.slug, exc.status_code, kind.title)
    return _answer(kind, str(exc.detail))


def _append_blocked(_: Req, exc: AppendBlocked) -> Response[bytes]:
    return _answer(
        problems.REQUEST_IN_PROGRESS,
        "a request with this key is still being recorded; retry shortly to get its outcome",
        retry_after=1,
    )


def _store_unavailable(_: Req, exc: StoreUnavailable) -> Response[bytes]:
    log.warning("database unavailable: %s", exc)
    return _answer(
        problems.SERVICE_UNAVAILABLE,
        "the database is unavailable; nothing was recorded unless a retry says otherwise",
        retry_after=1,
    )


def _projection_behind(_: Req, exc: ProjectionBehind) -> Response[bytes]:
    """A strong read, a command or a history waited `ORDERS_READ_WAIT_SECONDS` for the async
    projector to apply the writes acknowledged before it, in vain."""
    return _answer(
        problems.SERVICE_UNAVAILABLE,
        "the read model has not caught up with recent writes yet; retry, or (for a read) send "
        "`Consistency: eventual` for an answer that may miss them",
        retry_after=1,
    )


def _unexpected(request: Req, exc: Exception) -> Response[bytes]:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return _answer(problems.INTERNAL_ERROR, "an unexpected error occurred; it has been logged")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ProblemError: _problem_error,
    ValidationException: _validation,
    HTTPException: _http,
    AppendBlocked: _append_blocked,
    StoreUnavailable: _store_unavailable,
    ProjectionBehind: _projection_behind,
    Exception: _unexpected,
}
