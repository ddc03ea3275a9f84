"""The idempotency key: from `Idempotency-Key` or (older clients) `X-Request-Id`."""

from __future__ import annotations

import re
from typing import Final

from orders.api.openapi import string_parameter
from orders.api.problems import CONFLICTING_KEYS, INVALID_KEY, ProblemError

# 1 to 255 visible ASCII characters: no spaces, no control characters, nothing a log line,
# a header or a URL could mistake for something else.
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")
KEY_SCHEMA: Final = string_parameter(
    pattern=f"^{_VALID_KEY.pattern}$", min_length=1, max_length=255
)
"""The key's rules as OpenAPI documents them (documented only: a broken rule must answer
`invalid-idempotency-key`, not Litestar's generic parameter error)."""


def idempotency_key(idempotency_key: str | None, x_request_id: str | None) -> str:
    """The request's key; ProblemError (400) when it is missing, malformed, or given twice
    with different values."""
    if idempotency_key is not None and x_request_id is not None and idempotency_key != x_request_id:
        raise ProblemError(
            CONFLICTING_KEYS,
            "Idempotency-Key and X-Request-Id are both present and differ; send one key",
        )
    key = idempotency_key if idempotency_key is not None else x_request_id
    if key is None:
        raise ProblemError(
            INVALID_KEY, "send an Idempotency-Key (or X-Request-Id) header with a unique key"
        )
    if not _VALID_KEY.fullmatch(key):
        raise ProblemError(
            INVALID_KEY, "the idempotency key must be 1 to 255 visible ASCII characters"
        )
    return key
