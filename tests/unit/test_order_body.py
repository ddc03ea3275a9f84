"""The body decoders, of a create and of a lifecycle command: strict types, and no member
named twice in any object."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.api.body import decode_flat, decode_order
from orders.api.problems import ProblemError
from orders.domain.commands import (
    CancelRequest,
    DeliverRequest,
    OrderRequest,
    PayRequest,
    ProductLine,
    ShipRequest,
)

Pairs = list[tuple[str, object]]


def spell_key(key: str, escaped: bool) -> str:
    """A JSON string for `key`, its first letter written as a \\u escape when `escaped`."""
    return '"' + (f"\\u{ord(key[0]):04x}{key[1:]}" if escaped else key) + '"'


def render(members: list[tuple[str, bool, str]]) -> str:
    return "{" + ", ".join(f"{spell_key(k, e)}: {v}" for k, e, v in members) + "}"


# Member values that pass validation; text may contain the colons and quotes that a naive
# scan would miscount.
texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)
product_members = st.fixed_dictionaries(
    {"id": st.integers(1, 99), "price": st.integers(0, 99)},
    optional={"name": st.none() | texts, "quantity": st.integers(1, 3)},
)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, bool]:
    """A valid order body as raw JSON, perhaps with one member repeated; and whether it is."""
    products = draw(st.lists(product_members, min_size=1, max_size=4))
    objects: list[list[tuple[str, bool, str]]] = [
        [(k, draw(st.booleans()), json.dumps(v)) for k, v in p.items()] for p in products
    ]
    repeat = draw(st.booleans())
    if repeat:
        target = draw(st.sampled_from(objects))
        key, _, value = draw(st.sampled_from(target))
        target.insert(draw(st.integers(0, len(target))), (key, draw(st.booleans()), value))
    shipping = json.dumps(draw(texts.filter(str.strip)))
    products_json = "[" + ", ".join(render(o) for o in objects) + "]"
    top = [("products", False, products_json), ("shipping_to", draw(st.booleans()), shipping)]
    return render(draw(st.permutations(top))), repeat


@given(bodies())
def test_a_body_is_refused_exactly_when_an_object_repeats_a_member(
    body_and_repeat: tuple[str, bool],
) -> None:
    body, repeated = body_and_repeat
    if repeated:
        with pytest.raises(ProblemError) as refused:
            decode_order(body.encode())
        assert refused.value.problem.type == "/problems/invalid-body"
    else:
        assert isinstance(decode_order(body.encode()), OrderRequest)


def test_a_valid_body_decodes_with_defaults_filled_in() -> None:
    request = decode_order(b'{"products": [{"id": 1, "price": 5}], "shipping_to": "a: b"}')
    assert request == OrderRequest(products=[ProductLine(id=1, price=5)], shipping_to="a: b")


@pytest.mark.parametrize("value", [b'"5"', b"5.0", b"true", b"1e400", b"-5", b"null"])
def test_a_price_is_never_coerced(value: bytes) -> None:
    with pytest.raises(ProblemError):
        decode_order(b'{"products": [{"id": 1, "price": ' + value + b'}], "shipping_to": "a"}')


command_members: dict[type[msgspec.Struct], st.SearchStrategy[dict[str, object]]] = {
    PayRequest: st.fixed_dictionaries({"amount": st.integers(0, 10**6), "reference": texts}),
    ShipRequest: st.fixed_dictionaries({"carrier": texts, "tracking": texts}),
    CancelRequest: st.fixed_dictionaries({}, optional={"reason": st.none() | texts}),
    DeliverRequest: st.just({}),
}


@st.composite
def command_bodies(draw: st.DrawFn) -> tuple[type[msgspec.Struct], str, bool]:
    """A lifecycle command's type and body as raw JSON, perhaps with one member repeated;
    and whether it is."""
    kind = draw(st.sampled_from(list(command_members)))
    members = draw(command_members[kind].filter(_valid_texts))
    rendered = [(k, draw(st.booleans()), json.dumps(v)) for k, v in members.items()]
    repeat = bool(rendered) and draw(st.booleans())
    if repeat:
        key, _, value = draw(st.sampled_from(rendered))
        rendered.insert(draw(st.integers(0, len(rendered))), (key, draw(st.booleans()), value))
    return kind, render(rendered), repeat


def _valid_texts(members: dict[str, object]) -> bool:
    """Text members that ShortText accepts: not blank."""
    return all(not isinstance(v, str) or v.strip() for v in members.values())


@given(command_bodies())
def test_a_command_body_is_refused_exactly_when_it_repeats_a_member(
    drawn: tuple[type[msgspec.Struct], str, bool],
) -> None:
    kind, body, repeated = drawn
    decoder = msgspec.json.Decoder(kind)
    if repeated:
        with pytest.raises(ProblemError) as refused:
            decode_flat(body.encode(), decoder)
        assert refused.value.problem.type == "/problems/invalid-body"
    else:
        assert isinstance(decode_flat(body.encode(), decoder), kind)
