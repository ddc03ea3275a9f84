"""What Litestar's OpenAPI generation leaves out and our contract states."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar._openapi.schema_generation import SchemaCreator
from litestar._openapi.schema_generation.plugins.struct import (
    StructSchemaPlugin as LitestarStructSchemaPlugin,
)
from litestar.openapi.spec import OpenAPIHeader, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.typing import FieldDefinition

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
        REPLAYED_HEADER: _header(_REPLAYED, required=True, enum=["true", "false"]),
    },
    # A recorded rejection carries it; a reused key's answer does not.
    "422": {REPLAYED_HEADER: _header(_REPLAYED, required=False, enum=["true", "false"])},
    "409": {"Retry-After": _RETRY_AFTER},
    "503": {"Retry-After": _RETRY_AFTER},
}


@dataclass
class CreateOrderOperation(Operation):
    """The create operation with the headers of its answers, which Litestar does not document
    for responses declared with `ResponseSpec`."""

    def __post_init__(self) -> None:
        for status, response in (self.responses or {}).items():
            headers = _ANSWER_HEADERS.get(status)
            if headers is not None and isinstance(response, OpenAPIResponse):
                response.headers = {**(response.headers or {}), **headers}
