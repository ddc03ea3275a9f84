"""The business rules of creating an order, decided without any I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.domain.commands import CreateOrder, ProductLine
from orders.domain.decide import MAX_LINES, MAX_TOTAL, decide
from orders.domain.events import OrderCreated, OrderRejected, decode_event, encode_event

ORDER_ID = uuid.UUID("7b0f5b8e-1f2d-4a57-9a51-3a4f8e3a0c11")
NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)

# Any text a JSON body can carry once validated: valid UTF-8 (no lone surrogates), no NUL.
text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
lines = st.builds(
    ProductLine,
    id=st.integers(1, 2**63 - 1),
    price=st.integers(0, 10**15),
    name=st.none() | text,
    quantity=st.integers(1, 10**6),
)
# Mostly small totals, so that both outcomes are common.
cheap_lines = st.builds(
    ProductLine, id=st.integers(1, 1000), price=st.integers(0, 10**8), quantity=st.integers(1, 5)
)
commands = st.builds(
    CreateOrder,
    request_id=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1),
    # Short orders, and orders around the line limit (hypothesis rarely draws long lists).
    products=st.lists(lines | cheap_lines, max_size=5)
    | st.lists(cheap_lines, min_size=MAX_LINES - 2, max_size=MAX_LINES + 2),
    shipping_to=text.filter(str.strip),
)


def command(products: list[ProductLine], request_id: str = "key-1") -> CreateOrder:
    return CreateOrder(request_id=request_id, products=products, shipping_to="1 Main St")


def line(price: int = 1500, quantity: int = 1, product_id: int = 1) -> ProductLine:
    return ProductLine(id=product_id, price=price, quantity=quantity, name="book")


def test_an_order_within_every_rule_is_created_with_its_total() -> None:
    products = [line(1500, 2), line(250, 3, product_id=2)]
    event = decide(command(products), order_id=ORDER_ID, now=NOW)

    assert isinstance(event, OrderCreated)
    assert event.order_id == ORDER_ID
    assert event.created_at == NOW
    assert event.request_id == "key-1"
    assert event.products == products
    assert event.shipping_to == "1 Main St"
    assert event.total == 3750


@pytest.mark.parametrize(
    ("products", "reason"),
    [
        ([], "no_products"),
        ([line(product_id=n) for n in range(1, MAX_LINES + 2)], "too_many_lines"),
        ([line(MAX_TOTAL + 1)], "total_too_large"),
        ([line(MAX_TOTAL // 2 + 1, 2)], "total_too_large"),
    ],
    ids=["no products", "101 lines", "total one above the limit", "total above via quantity"],
)
def test_an_order_breaking_a_rule_is_rejected_with_a_stable_reason(
    products: list[ProductLine], reason: str
) -> None:
    event = decide(command(products), order_id=ORDER_ID, now=NOW)

    assert isinstance(event, OrderRejected)
    assert event.reason == reason
    assert event.detail
    assert event.request_id == "key-1"
    assert event.rejected_at == NOW


@pytest.mark.parametrize(
    "products",
    [[line(product_id=n) for n in range(1, MAX_LINES + 1)], [line(MAX_TOTAL)], [line(0)]],
    ids=["exactly 100 lines", "total exactly 10^10", "a free product"],
)
def test_an_order_at_a_limit_is_created(products: list[ProductLine]) -> None:
    assert isinstance(decide(command(products), order_id=ORDER_ID, now=NOW), OrderCreated)


def test_the_limits_are_the_documented_ones() -> None:
    assert (MAX_LINES, MAX_TOTAL) == (100, 10**10)


@given(commands, st.uuids(), st.datetimes(timezones=st.just(UTC)))
def test_decide_is_deterministic_given_the_order_id_and_time(
    cmd: CreateOrder, order_id: uuid.UUID, now: datetime
) -> None:
    assert decide(cmd, order_id=order_id, now=now) == decide(cmd, order_id=order_id, now=now)


@given(commands)
def test_an_order_is_rejected_exactly_when_a_rule_is_broken(cmd: CreateOrder) -> None:
    total = sum(p.price * p.quantity for p in cmd.products)
    broken = not cmd.products or len(cmd.products) > MAX_LINES or total > MAX_TOTAL

    event = decide(cmd, order_id=ORDER_ID, now=NOW)

    assert isinstance(event, OrderRejected) == broken
    if isinstance(event, OrderCreated):
        assert event.total == total
        assert event.products == cmd.products


@given(commands, st.uuids(), st.datetimes(timezones=st.just(UTC)))
def test_every_decision_survives_an_encode_decode_round_trip(
    cmd: CreateOrder, order_id: uuid.UUID, now: datetime
) -> None:
    event = decide(cmd, order_id=order_id, now=now)
    assert decode_event(encode_event(event)) == event
