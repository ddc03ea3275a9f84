"""What Litestar's OpenAPI generation leaves out and our contract states."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar._openapi.schema_generation import SchemaCreator
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.spec import OpenAPIHeader, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.typing import FieldDefinition

from orders.api.rendering import REPLAYED_HEADER


class ClosedStructSchemaPlugin(StructSchemaPlugin):
    """Documents a Struct with `forbid_unknown_fields` as a closed object
    (`additionalProperties: false`): a client, or a generated test, learns from the schema
    that an unknown member is refused."""

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        config: msgspec.structs.StructConfig = field_definition.type_.__struct_config__
        if config.forbid_unknown_fields:
            schema.additional_properties = False
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
