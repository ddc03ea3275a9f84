"""The idempotency key of a request: from `Idempotency-Key` or (older clients) `X-Request-Id`.

`Idempotency-Key` is what the IETF draft (draft-ietf-httpapi-idempotency-key-header) defines:
an RFC 8941 Item whose value is a String, `Idempotency-Key: "8e03978e-40d5-..."`, sent once.
Clients written before the draft send the key bare, `Idempotency-Key: 8e03978e-40d5-...`, and
that form is still accepted: `"abc"` and `abc` name the same key. `X-Request-Id` is taken raw,
as older clients send it: its quotes, if any, are part of its key. A request whose key could be
two keys (a field sent twice, or repeated fields a proxy joined with a comma) is refused, never
guessed.

Every key this module returns is a str of 1 to 255 characters, each in 0x20-0x7E (a bare key and
an X-Request-Id: 0x21-0x7E without a comma); stream ids are built on that.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final

import http_sf

from orders.api.problems import AMBIGUOUS_KEY, CONFLICTING_KEYS, INVALID_KEY, ProblemError

MAX_KEY_LENGTH: Final = 255
IDEMPOTENCY_KEY: Final = "Idempotency-Key"
REQUEST_ID: Final = "X-Request-Id"

# An sf-string (RFC 8941, section 3.3.3) holding 1 to 255 characters: printable ASCII, with `"`
# and `\` escaped by a backslash. Documentation only: http-sf parses the header.
_QUOTED_PATTERN: Final = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x22\x5c]){1,255}"'
# A bare key: visible ASCII, no comma (it joins two keys), no leading `"` (it opens an sf-string).
_BARE_PATTERN: Final = r"[\x21\x23-\x2b\x2d-\x7e][\x21-\x2b\x2d-\x7e]{0,254}"
_BARE: Final = re.compile(_BARE_PATTERN)

IDEMPOTENCY_KEY_PATTERN: Final = f"^(?:{_QUOTED_PATTERN}|{_BARE_PATTERN})$"
"""Every Idempotency-Key value this module accepts, as a regular expression for OpenAPI."""
MAX_QUOTED_LENGTH: Final = 2 + 2 * MAX_KEY_LENGTH
"""The longest Idempotency-Key value: the quotes, and every character of the key escaped."""
# An X-Request-Id: visible ASCII without a comma.
_RAW_PATTERN: Final = r"[\x21-\x2b\x2d-\x7e]{1,255}"
_RAW: Final = re.compile(_RAW_PATTERN)
REQUEST_ID_PATTERN: Final = f"^{_RAW_PATTERN}$"
"""Every X-Request-Id this module accepts, as a regular expression for OpenAPI."""

_EXAMPLE: Final = '"8e03978e-40d5-43e8-bc93-6894a57f9324"'
_IDEMPOTENCY_KEY_RULE: Final = (
    f"Idempotency-Key must be one string of 1 to {MAX_KEY_LENGTH} printable ASCII characters "
    f'in double quotes, with " and \\ escaped by a backslash (Idempotency-Key: {_EXAMPLE}), or '
    f"a bare key of 1 to {MAX_KEY_LENGTH} visible ASCII characters without a comma"
)
_REQUEST_ID_RULE: Final = (
    f"X-Request-Id must be 1 to {MAX_KEY_LENGTH} visible ASCII characters without a comma"
)


def request_key(idempotency_keys: Sequence[str], request_ids: Sequence[str]) -> str:
    """The request's key from every `Idempotency-Key` field and every `X-Request-Id` field it
    carries, each value as received (decoded as Latin-1, as Litestar decodes headers).

    ProblemError (400) when no key is sent, a key is malformed, a key header is sent more than
    once (or holds a list), or both headers are sent with different keys.
    """
    key = _parsed(idempotency_keys, IDEMPOTENCY_KEY, _idempotency_key)
    legacy = _parsed(request_ids, REQUEST_ID, _request_id)
    if key is None:
        if legacy is None:
            raise ProblemError(
                INVALID_KEY,
                f"send the request's unique key in a header: Idempotency-Key: {_EXAMPLE}",
            )
        return legacy
    if legacy is not None and legacy != key:
        raise ProblemError(
            CONFLICTING_KEYS,
            "Idempotency-Key and X-Request-Id are both present and name different keys; "
            "send one key",
        )
    return key


def _parsed(values: Sequence[str], header: str, parse: Callable[[str], str]) -> str | None:
    if not values:
        return None
    if len(values) > 1:
        raise ProblemError(
            AMBIGUOUS_KEY, f"{header} was sent {len(values)} times; send the key once"
        )
    return parse(values[0])


def _idempotency_key(value: str) -> str:
    if not value.startswith('"'):
        return _bare(value, _BARE, _IDEMPOTENCY_KEY_RULE, IDEMPOTENCY_KEY)
    try:
        members = http_sf.parse(value.encode("latin-1"), tltype="list")
    except http_sf.StructuredFieldError as error:
        raise ProblemError(INVALID_KEY, f"{_IDEMPOTENCY_KEY_RULE} ({error})") from None
    assert isinstance(members, list)  # a list is what tltype="list" parses
    if len(members) > 1:
        raise _list_of_keys(IDEMPOTENCY_KEY)
    member = members[0]
    assert isinstance(member, tuple)  # a parsed member comes with its parameters
    key, parameters = member
    if parameters:
        raise ProblemError(INVALID_KEY, f"{_IDEMPOTENCY_KEY_RULE} (without parameters)")
    # The value opens with a double quote, so its first member is a String.
    assert isinstance(key, str)
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        raise ProblemError(INVALID_KEY, f"{_IDEMPOTENCY_KEY_RULE} (this one has {len(key)})")
    return key


def _request_id(value: str) -> str:
    return _bare(value, _RAW, _REQUEST_ID_RULE, REQUEST_ID)


def _bare(value: str, rule: re.Pattern[str], explained: str, header: str) -> str:
    if rule.fullmatch(value):
        return value
    if "," in value:
        raise _list_of_keys(header)
    raise ProblemError(INVALID_KEY, explained)


def _list_of_keys(header: str) -> ProblemError:
    return ProblemError(
        AMBIGUOUS_KEY,
        f"{header} holds a comma-separated list, as a proxy makes of repeated fields; "
        "send one key, once",
    )
