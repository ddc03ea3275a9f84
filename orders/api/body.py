"""Request bodies, decoded strictly: what the JSON says, nothing coerced, no member
named twice.

Litestar's own decoding is lax (`"15"` and `15.0` become the integer 15) and, like any JSON
parser that builds dicts, keeps one of two same-named members silently. A body is a promise
the client signs with its idempotency key, so both are refused here instead.
"""

from __future__ import annotations

import functools
import json
from typing import Any, TypeVar

import msgspec
from litestar._openapi.schema_generation import SchemaCreator
from litestar.dto import MsgspecDTO
from litestar.dto._backend import DTOBackend
from litestar.openapi.spec import Reference, Schema
from litestar.typing import FieldDefinition

from orders.api.problems import INVALID_BODY, ProblemError
from orders.domain.commands import OrderRequest

_decoder = msgspec.json.Decoder(OrderRequest)  # strict: no type coercion
T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)


class _RepeatedMember(Exception):
    pass


def decode_order(raw: bytes) -> OrderRequest:
    """The validated request in `raw`; ProblemError (400) for anything else."""
    request = _decoded(raw, _decoder)
    if _may_repeat_a_member(raw, request) and _repeats_a_member(raw):
        raise _repeated_member()
    return request


def decode_flat(raw: bytes, decoder: msgspec.json.Decoder[S]) -> S:
    """What `decoder` makes of `raw` (an object whose members all hold scalars, as a lifecycle
    command's body), which names no member twice; ProblemError (400) for anything else."""
    decoded = _decoded(raw, decoder)
    if raw.count(b":") != _least_members(decoded) and _repeats_a_member(raw):
        raise _repeated_member()
    return decoded


def _decoded(raw: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    try:
        return decoder.decode(raw)
    # ValidationError is a DecodeError; invalid UTF-8 inside a string surfaces as neither.
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProblemError(INVALID_BODY, str(exc)) from None


def _repeated_member() -> ProblemError:
    return ProblemError(INVALID_BODY, "an object in the body has two members of the same name")


def _may_repeat_a_member(raw: bytes, request: OrderRequest) -> bool:
    """False when `raw` provably names no member twice: a cheap count on the common path.

    Every member has exactly one colon outside strings, so `raw` has at most as many members
    as colons; the decoded request tells how many distinct members it must at least have had
    (its required ones, and each optional one holding other than its default). When the two
    counts meet, no member can have been repeated. Otherwise (a colon inside a string, a
    default spelled out, or a real repeat) the exact check decides.
    """
    least_members = 2 + sum(
        2 + (line.name is not None) + (line.quantity != 1) for line in request.products
    )
    return raw.count(b":") != least_members


def _least_members(decoded: msgspec.Struct) -> int:
    """How many distinct members the flat object `decoded` came from must at least have had:
    its required fields, and each optional one holding other than its default. As in
    `_may_repeat_a_member`, a body with just as many colons names no member twice."""
    return sum(
        field.required or getattr(decoded, field.name) != field.default
        for field in _fields(type(decoded))
    )


@functools.cache
def _fields(struct: type[msgspec.Struct]) -> tuple[msgspec.structs.FieldInfo, ...]:
    """The fields of a body type, once per type: `msgspec.structs.fields` resolves the class's
    annotations on every call, which costs more than decoding the body."""
    return msgspec.structs.fields(struct)


def _refuse_repeats(pairs: list[tuple[str, Any]]) -> None:
    if len({name for name, _ in pairs}) != len(pairs):
        raise _RepeatedMember


def _repeats_a_member(raw: bytes) -> bool:
    # Only ever given a body msgspec has just validated: small, shallow, well-formed JSON.
    try:
        json.loads(raw, object_pairs_hook=_refuse_repeats)
    except _RepeatedMember:
        return True
    return False


class OrderRequestDTO(MsgspecDTO[OrderRequest]):
    """Litestar's hook for decoding a raw body, used only as that: the body is decoded by
    `decode_order` and documented as `OrderRequest` itself (Litestar's generated transfer
    model, which this skips, cannot represent `Annotated[str, Meta(...)] | None`)."""

    @classmethod
    def create_for_field_definition(
        cls,
        field_definition: FieldDefinition,
        handler_id: str,
        backend_cls: type[DTOBackend] | None = None,
    ) -> None:
        return None

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: SchemaCreator
    ) -> Reference | Schema:
        return schema_creator.for_field_definition(FieldDefinition.from_annotation(OrderRequest))

    def decode_bytes(self, value: bytes) -> OrderRequest:
        return decode_order(value)
