"""The CloudEvent of a recorded event: ids that survive re-sends, a sequence per order that
orders as text the way it does as a number, and nothing private on the wire."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid5

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from orders.domain.commands import ProductLine
from orders.domain.events import (
    OrderCreated,
    OrderEvent,
    OrderPaid,
    OrderRejected,
    encode_event,
    event_type,
)
from orders.eventstore import RecordedEvent
from orders.publishing.cloudevents import TYPES, cloud_event, encode, encode_batch, event_id

ORDER_ID = UUID("01937f0e-8c1a-7d5e-9a3b-4c2d1e0f9a8b")
ID_NAMESPACE = UUID("0b8e7d1c-5a0f-4f64-9d53-2f6f3c0e9a41")
"""The namespace of every event id since the first release: ids must not change."""
AT = datetime(2026, 12, 2, 9, 30, 0, 123456, tzinfo=UTC)


def recorded(event: OrderEvent, *, version: int = 1, stream_id: str = "key-1") -> RecordedEvent:
    return RecordedEvent(
        position=7,
        stream_id=stream_id,
        version=version,
        type=event_type(event),
        data=encode_event(event),
        metadata=b"{}",
        tx_id=42,
        recorded_at=AT,
    )


CREATED = OrderCreated(
    order_id=ORDER_ID,
    request_id="key-1",
    products=[ProductLine(id=1, name="book", price=1999, quantity=2)],
    shipping_to="Jane Doe, 1 Main Street",
    total=3998,
    created_at=AT,
    fingerprint="f" * 64,
    owner="alice",
)
PAID = OrderPaid(
    order_id=ORDER_ID,
    occurred_at=AT,
    by="clerk",
    request_id="pay-1",
    fingerprint="e" * 64,
    amount=3998,
    reference="psp-1",
)


def test_a_created_order_is_a_structured_cloudevent() -> None:
    wire = msgspec.json.decode(encode(cloud_event(recorded(CREATED), source="/shop/orders")))
    assert wire == {
        "id": event_id("key-1", 1),
        "source": "/shop/orders",
        "type": "orders.OrderCreated",
        "time": "2026-12-02T09:30:00.123456Z",
        "sequence": "0000000001",
        "data": {
            "order_id": str(ORDER_ID),
            "products": [{"id": 1, "name": "book", "price": 1999, "quantity": 2}],
            "shipping_to": "Jane Doe, 1 Main Street",
            "total": 3998,
            "created_at": "2026-12-02T09:30:00.123456Z",
            "owner": "alice",
        },
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "subject": str(ORDER_ID),
    }


def test_the_key_and_fingerprint_are_never_sent() -> None:
    wire = encode(cloud_event(recorded(PAID, version=2, stream_id="§5:alicekey-1")))
    assert b"pay-1" not in wire
    assert b"e" * 64 not in wire
    assert b"key-1" not in wire


def test_a_rejected_create_has_no_subject() -> None:
    rejected = OrderRejected(
        request_id="key-2", reason="no_products", detail="none", rejected_at=AT, fingerprint="0"
    )
    wire = msgspec.json.decode(encode(cloud_event(recorded(rejected))))
    assert "subject" not in wire
    assert wire["type"] == "orders.OrderRejected"


def test_every_type_is_documented() -> None:
    assert cloud_event(recorded(PAID, version=2)).type in TYPES
    assert len(set(TYPES)) == len(TYPES) == 6


@given(st.text(min_size=1, max_size=40), st.integers(1, 2**31 - 1))
def test_an_id_names_one_stream_and_version(stream_id: str, version: int) -> None:
    assert event_id(stream_id, version) == event_id(stream_id, version)
    assert event_id(stream_id, version) != event_id(
        stream_id, version + 1 if version < 2**31 - 1 else 1
    )
    assert event_id(stream_id, version) != event_id(stream_id + "1", version)


@given(st.text(max_size=80), st.integers(1, 2**31 - 1))
def test_an_id_is_the_uuid5_of_the_version_and_the_stream(stream_id: str, version: int) -> None:
    assert event_id(stream_id, version) == str(uuid5(ID_NAMESPACE, f"{version}:{stream_id}"))


@given(st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1))
def test_sequences_order_as_text_as_versions_do_as_numbers(a: int, b: int) -> None:
    first = cloud_event(recorded(PAID, version=a)).sequence
    second = cloud_event(recorded(PAID, version=b)).sequence
    assert (first < second) == (a < b)
    assert int(first) == a


def test_a_batch_is_a_json_array_of_the_same_events() -> None:
    events = [cloud_event(recorded(CREATED)), cloud_event(recorded(PAID, version=2))]
    assert msgspec.json.decode(encode_batch(events)) == [
        msgspec.json.decode(encode(event)) for event in events
    ]
