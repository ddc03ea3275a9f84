"""What Litestar's OpenAPI generation leaves out and our contract states."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgspec
from litestar._openapi.schema_generation import SchemaCreator
from litestar._openapi.schema_generation.plugins.struct import (
    StructSchemaPlugin as LitestarStructSchemaPlugin,
)
from litestar.enums import ParamType
from litestar.openapi.spec import (
    Example,
    OpenAPIHeader,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Schema,
)
from litestar.typing import FieldDefinition

from orders.api import feed_query
from orders.api.keys import (
    IDEMPOTENCY_KEY,
    IDEMPOTENCY_KEY_PATTERN,
    MAX_KEY_LENGTH,
    MAX_QUOTED_LENGTH,
    REQUEST_ID,
    REQUEST_ID_PATTERN,
)
from orders.api.preconditions import IF_MATCH_PATTERN
from orders.api.rendering import REPLAYED_HEADER


def string_parameter(**constraints: Any) -> dict[str, Any]:
    """`schema_extra` for an optional header or query parameter: a string with `constraints`
    (Litestar documents `str | None` as "string or null", and neither can be null).
    Documentation only: the handler checks the value and answers its own problem."""
    return {"type": OpenAPIType.STRING, "one_of": None, **constraints}


class StructSchemaPlugin(LitestarStructSchemaPlugin):
    """Litestar's Struct schemas, made to say exactly what decoding enforces.

    A Struct with `forbid_unknown_fields` is a closed object (`additionalProperties: false`),
    so a client, or a generated test, learns that an unknown member is refused. Integer bounds
    are the exact integers (Litestar writes them as floats, and 2**63 - 1 as a float is 2**63).
    """

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        assert isinstance(info, msgspec.inspect.StructType)
        if info.forbid_unknown_fields:
            schema.additional_properties = False
        for field in info.fields:
            bounds = field.type
            documented = (schema.properties or {}).get(field.encode_name)
            if isinstance(bounds, msgspec.inspect.IntType) and isinstance(documented, Schema):
                documented.minimum = bounds.ge
                documented.exclusive_minimum = bounds.gt
                documented.maximum = bounds.le
                documented.exclusive_maximum = bounds.lt
        return schema


def _header(description: str, *, required: bool, **schema: Any) -> OpenAPIHeader:
    return OpenAPIHeader(
        schema=Schema(type=OpenAPIType.STRING, **schema),
        description=description,
        required=required,
    )


_REPLAYED = "`true` when this outcome was recorded by an earlier request with the same key"
_RETRY_AFTER = _header("Seconds to wait before retrying", required=True, pattern="^[0-9]+$")
_ANSWER_HEADERS: dict[str, dict[str, OpenAPIHeader]] = {
    "201": {
        "Location": _header("The created order's URL", required=True),
        "ETag": _header('The new order\'s entity tag, `"1"`, for a later If-Match', required=True),
        REPLAYED_HEADER: _header(_REPLAYED, required=True, enum=["true", "false"]),
    },
    # A recorded rejection carries it; a reused key's answer does not.
    "422": {REPLAYED_HEADER: _header(_REPLAYED, required=False, enum=["true", "false"])},
    "409": {"Retry-After": _RETRY_AFTER},
    "503": {"Retry-After": _RETRY_AFTER},
}


_UUID: Final = "8e03978e-40d5-43e8-bc93-6894a57f9324"
_KEY_HEADERS: Final = [
    Parameter(
        name=IDEMPOTENCY_KEY,
        param_in=ParamType.HEADER,
        required=False,
        description="The request's unique key, as the IETF draft defines it: an RFC 8941 string "
        f'of 1 to {MAX_KEY_LENGTH} printable ASCII characters in double quotes, with `\\"` and '
        f'`\\\\` escaped (`"{_UUID}"`). A bare key of 1 to {MAX_KEY_LENGTH} visible ASCII '
        f"characters without a comma (`{_UUID}`) is accepted too and names the same key. Send "
        "the field once. Every retry with the same key and payload gets the recorded outcome.",
        schema=Schema(
            type=OpenAPIType.STRING,
            pattern=IDEMPOTENCY_KEY_PATTERN,
            min_length=1,
            max_length=MAX_QUOTED_LENGTH,
        ),
        examples={
            "draft": Example(summary="The draft's form", value=f'"{_UUID}"'),
            "bare": Example(summary="A bare key", value=_UUID),
        },
    ),
    Parameter(
        name=REQUEST_ID,
        param_in=ParamType.HEADER,
        required=False,
        description=f"The older name of the key, taken as sent: 1 to {MAX_KEY_LENGTH} visible "
        "ASCII characters without a comma. Sent with Idempotency-Key, it must name the same "
        'key (`X-Request-Id: abc` and `Idempotency-Key: "abc"` do).',
        schema=Schema(
            type=OpenAPIType.STRING,
            pattern=REQUEST_ID_PATTERN,
            min_length=1,
            max_length=MAX_KEY_LENGTH,
        ),
    ),
]


@dataclass
class CreateOrderOperation(Operation):
    """The create operation with what Litestar cannot document for it: the headers of its
    answers (declared with `ResponseSpec`), and its key headers, which the handler reads itself,
    every field of them (a header parameter would hand over only the first of two)."""

    def __post_init__(self) -> None:
        _document(self, _KEY_HEADERS, _ANSWER_HEADERS)


def _document(
    operation: Operation,
    parameters: list[Parameter],
    answer_headers: dict[str, dict[str, OpenAPIHeader]],
) -> None:
    """Add the `parameters` the handler reads itself, and the headers of its answers."""
    operation.parameters = [*parameters, *(operation.parameters or [])]
    for status, response in (operation.responses or {}).items():
        headers = answer_headers.get(status)
        if headers is not None and isinstance(response, OpenAPIResponse):
            response.headers = {**(response.headers or {}), **headers}


_COMMAND_ANSWER_HEADERS: dict[str, dict[str, OpenAPIHeader]] = {
    "200": {
        "ETag": _header("The order's version as a strong entity tag", required=True),
        REPLAYED_HEADER: _header(_REPLAYED, required=True, enum=["true", "false"]),
    },
    "409": {"Retry-After": _header("Seconds to wait before retrying", required=False)},
    "412": {"ETag": _header("The order's current entity tag", required=True)},
    "503": {"Retry-After": _RETRY_AFTER},
}
_IF_MATCH: Final = Parameter(
    name="If-Match",
    param_in=ParamType.HEADER,
    required=False,
    description='Optional: the ETag the command expects the order at (`"2"`), compared strongly '
    "(a weak tag never matches), or `*` for any existing order; otherwise 412, and nothing "
    "is recorded. A retry whose key is already recorded is replayed whatever it says.",
    schema=Schema(type=OpenAPIType.STRING, pattern=IF_MATCH_PATTERN),
)


@dataclass
class LifecycleCommandOperation(Operation):
    """A lifecycle command: its key headers (required: the key's scope is the caller and the
    order), If-Match, and the headers of its answers."""

    def __post_init__(self) -> None:
        _document(self, [*_KEY_HEADERS, _IF_MATCH], _COMMAND_ANSWER_HEADERS)


def _query(name: str, description: str, schema: Schema) -> Parameter:
    return Parameter(
        name=name, param_in=ParamType.QUERY, required=False, description=description, schema=schema
    )


_FEED_PARAMETERS: Final = [
    _query(
        "after",
        'Where to go on from: the `after` of the previous answer\'s `Link: rel="next"` '
        "(opaque); omit to start at the first event",
        Schema(
            type=OpenAPIType.STRING,
            pattern=feed_query.PATTERN,
            min_length=feed_query.LENGTH,
            max_length=feed_query.LENGTH,
        ),
    ),
    _query(
        "limit",
        f"At most this many events (default {feed_query.DEFAULT_LIMIT})",
        Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=feed_query.MAX_LIMIT),
    ),
    _query(
        "wait",
        "Seconds to wait for an event when there is none after the cursor (default 0: answer "
        "at once); the answer comes as soon as one is recorded, else empty when the time is up",
        Schema(type=OpenAPIType.INTEGER, minimum=0, maximum=feed_query.MAX_WAIT_SECONDS),
    ),
]
_FEED_ANSWER_HEADERS: dict[str, dict[str, OpenAPIHeader]] = {
    "200": {
        "Link": _header(
            'RFC 8288: `<...>; rel="next"`, the request that continues after this page (after '
            "the same cursor when the page is empty)",
            required=True,
        )
    },
    "401": {"WWW-Authenticate": _header("What identity to send", required=True)},
    "503": {"Retry-After": _RETRY_AFTER},
}


@dataclass
class EventFeedOperation(Operation):
    """The event feed: its query parameters, which the handler reads itself (every field of
    them: a parameter sent twice is refused, not guessed at), and its `Link` header."""

    def __post_init__(self) -> None:
        _document(self, _FEED_PARAMETERS, _FEED_ANSWER_HEADERS)
