"""Paging through the feed: every event of every order, in store order, as the same CloudEvents
(same ids) the broker gets, each order's sequence contiguous, a next link on every page."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import asyncpg
import httpx
import msgspec

from orders.eventstore import EventStore
from orders.publishing.cloudevents import TYPES, cloud_event, encode_batch, event_id
from orders.settings import Settings
from tests.api.helpers import (
    SHIPMENT,
    new_key,
    order_body,
    payment,
    post_order,
    send_command,
)
from tests.feed.feed import EVENTS, read_page, read_to_the_end, service

ORDERS = 12


async def order_with_history(client: httpx.AsyncClient, index: int) -> str:
    """An order created and moved along one of four paths: as created, paid, paid and
    shipped, or cancelled."""
    created = await post_order(client, order_body(), new_key())
    assert created.status_code == 201, created.text
    order_id: str = created.json()["order_id"]
    path: list[list[tuple[str, object]]] = [
        [],
        [("pay", payment())],
        [("pay", payment()), ("ship", SHIPMENT)],
        [("cancel", {})],
    ]
    for action, body in path[index % 4]:
        answer = await send_command(client, order_id, action, body)
        assert answer.status_code == 200, answer.text
    return order_id


async def make_orders(client: httpx.AsyncClient, n: int = ORDERS) -> list[str]:
    return list(await asyncio.gather(*(order_with_history(client, i) for i in range(n))))


async def test_paging_serves_every_event_once_in_store_order_with_contiguous_sequences(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    order_ids = await make_orders(client)

    served, last = await read_to_the_end(client, f"{EVENTS}?limit=5")

    stored = await store.read_all(limit=10_000)
    assert [event["id"] for event in served] == [
        event_id(recorded.stream_id, recorded.version) for recorded in stored
    ]
    assert len({event["id"] for event in served}) == len(served)
    sequences: dict[str, list[int]] = defaultdict(list)
    for event in served:
        assert event["type"] in TYPES
        sequences[event["subject"]].append(int(event["sequence"]))
    assert set(order_ids) <= set(sequences)
    for subject, seen in sequences.items():
        assert seen == list(range(1, len(seen) + 1)), subject
    assert {len(sequences[order_id]) for order_id in order_ids} == {1, 2, 3}
    assert last.events == []


async def test_a_page_holds_at_most_limit_events_and_links_to_the_rest(
    client: httpx.AsyncClient,
) -> None:
    await make_orders(client, 4)

    first = await read_page(client, "?limit=3")
    second = await read_page(client, f"?after={first.cursor}&limit=3")

    assert len(first.events) == 3 and len(second.events) >= 1
    assert first.next == f"{EVENTS}?after={first.cursor}&limit=3"
    assert not {e["id"] for e in first.events} & {e["id"] for e in second.events}
    whole = await read_page(client, "?limit=500")
    assert whole.events[: len(first.events) + len(second.events)] == first.events + second.events


async def test_an_empty_page_links_to_the_same_cursor(client: httpx.AsyncClient) -> None:
    await make_orders(client, 1)
    _, last = await read_to_the_end(client)

    again = await read_page(client, f"?after={last.cursor}&wait=0")

    assert again.events == []
    assert again.cursor == last.cursor
    assert again.next == last.next


async def test_the_feed_sends_exactly_what_the_publisher_sends_for_each_event(
    client: httpx.AsyncClient, store: EventStore, pool: asyncpg.Pool
) -> None:
    """A consumer that lost its queue backfills from the feed: the events it gets are the
    CloudEvents the broker gets (one function makes both), so it dedupes by the same ids."""
    await make_orders(client, 4)
    served, _ = await read_to_the_end(client, f"{EVENTS}?limit=500")

    stored = await store.read_all(limit=10_000)
    as_published: list[dict[str, Any]] = msgspec.json.decode(
        encode_batch(cloud_event(recorded, source="/orders") for recorded in stored)
    )
    assert served == as_published
    by_stream = await pool.fetch("SELECT stream_id, version FROM events ORDER BY tx_id, position")
    assert [e["id"] for e in served] == [event_id(r["stream_id"], r["version"]) for r in by_stream]


async def test_every_event_carries_the_configured_source(
    database_url: str, client: httpx.AsyncClient
) -> None:
    await make_orders(client, 1)
    settings = Settings(pool_size=2, events_source="https://shop.example/orders")
    async with service(database_url, settings) as (_, other):
        page = await read_page(other, "?limit=500")

    assert page.events
    assert {event["source"] for event in page.events} == {"https://shop.example/orders"}
