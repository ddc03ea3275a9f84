"""The payload fingerprint tells a retry (same payload, however spelled) from another request."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.domain.commands import CreateOrder, OrderRequest
from orders.domain.fingerprint import fingerprint

BASE = (
    b'{"products": [{"id": 1, "name": "book", "price": 1500, "quantity": 1},'
    b' {"id": 2, "price": 250, "quantity": 3}], "shipping_to": "1 Main St"}'
)


def fingerprint_of(body: bytes | str, request_id: str = "key-1") -> str:
    request = msgspec.json.decode(body, type=OrderRequest)
    return fingerprint(CreateOrder.from_request(request_id, request))


@pytest.mark.parametrize(
    "spelling",
    [
        # key order
        '{"shipping_to": "1 Main St", "products": [{"quantity": 1, "price": 1500, "name": "book",'
        ' "id": 1}, {"quantity": 3, "id": 2, "price": 250}]}',
        # whitespace
        '{"products":[{"id":1,"name":"book","price":1500,"quantity":1},'
        '{"id":2,"price":250,"quantity":3}],"shipping_to":"1 Main St"}',
        '\n\t{ "products" : [ { "id" : 1 , "name" : "book" , "price" : 1500 , "quantity" : 1 } ,'
        '\r\n { "id" : 2 , "price" : 250 , "quantity" : 3 } ] , "shipping_to" : "1 Main St" }  ',
        # the default quantity omitted, the optional name spelled out as null
        '{"products": [{"id": 1, "name": "book", "price": 1500},'
        ' {"id": 2, "name": null, "price": 250, "quantity": 3}], "shipping_to": "1 Main St"}',
        # escapes that decode to the same text
        '{"products": [{"id": 1, "name": "b\\u006fok", "price": 1500},'
        ' {"id": 2, "price": 250, "quantity": 3}], "shipping_to": "1\\u0020Main St"}',
    ],
    ids=["key order", "no whitespace", "extra whitespace", "defaults", "escapes"],
)
def test_the_same_payload_spelled_differently_has_the_same_fingerprint(spelling: str) -> None:
    assert fingerprint_of(spelling) == fingerprint_of(BASE)


def test_the_key_is_not_part_of_the_fingerprint() -> None:
    assert fingerprint_of(BASE, "key-1") == fingerprint_of(BASE, "key-2")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("products", 0, "id"), 9),
        (("products", 0, "price"), 1501),
        (("products", 0, "name"), "Book"),
        (("products", 0, "name"), None),
        (("products", 0, "quantity"), 2),
        (("products", 1, "name"), "pen"),
        (("shipping_to",), "1 Main St."),
    ],
)
def test_a_change_to_any_field_changes_the_fingerprint(
    path: tuple[str | int, ...], value: object
) -> None:
    payload = msgspec.json.decode(BASE)
    target = payload
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    assert fingerprint_of(msgspec.json.encode(payload)) != fingerprint_of(BASE)


def test_reordering_adding_or_removing_lines_changes_the_fingerprint() -> None:
    payload = msgspec.json.decode(BASE)
    products = payload["products"]
    variants = [
        [products[1], products[0]],
        [products[0]],
        [*products, products[1]],
    ]
    prints = {fingerprint_of(msgspec.json.encode({**payload, "products": v})) for v in variants}
    assert len(prints) == len(variants)
    assert fingerprint_of(BASE) not in prints


line = st.fixed_dictionaries(
    {"id": st.integers(1, 10**6), "price": st.integers(0, 10**9)},
    optional={
        "quantity": st.integers(1, 100),
        "name": st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=5),
    },
)
payloads = st.fixed_dictionaries(
    {"products": st.lists(line, max_size=4), "shipping_to": st.sampled_from(["a", "b", "1 Main"])}
)


@given(payloads, payloads)
def test_fingerprints_are_equal_exactly_when_the_validated_payloads_are(
    first: dict[str, object], second: dict[str, object]
) -> None:
    a = msgspec.json.decode(msgspec.json.encode(first), type=OrderRequest)
    b = msgspec.json.decode(msgspec.json.encode(second), type=OrderRequest)
    same = fingerprint_of(msgspec.json.encode(first)) == fingerprint_of(msgspec.json.encode(second))
    assert same == (a == b)
