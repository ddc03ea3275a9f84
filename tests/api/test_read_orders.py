"""Reading orders: one by id, all a page at a time, and how many."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.api.helpers import ORDERS, as_read, assert_problem, new_key, order_body, post_order


async def create_orders(client: httpx.AsyncClient, n: int) -> list[str]:
    ids = []
    for i in range(n):
        response = await post_order(client, order_body(shipping_to=f"{i} Main St"), new_key())
        assert response.status_code == 201
        ids.append(response.json()["order_id"])
    return ids


async def all_pages(client: httpx.AsyncClient, limit: int) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    params: dict[str, str | int] = {"limit": limit}
    for _ in range(1000):  # a bound, so a cursor that never ends fails instead of hanging
        response = await client.get(ORDERS, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        if page["next_after"] is None:
            return items
        assert page["items"], "a page with a next cursor must not be empty"
        params = {"limit": limit, "after": page["next_after"]}
    raise AssertionError("pagination did not end")


async def test_an_order_is_read_by_its_id(client: httpx.AsyncClient) -> None:
    created = await post_order(client, order_body(), new_key())

    read = await client.get(f"{ORDERS}/{created.json()['order_id']}")

    assert read.status_code == 200
    assert read.headers["content-type"] == "application/json"
    assert read.json() == as_read(created.json())


async def test_an_unknown_order_id_is_a_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{ORDERS}/{uuid.uuid4()}"), 404, "order-not-found")


@pytest.mark.parametrize("order_id", ["not-a-uuid", "1", "%00", "x" * 300, "'%20OR%201=1"])
async def test_an_order_id_that_is_not_a_uuid_is_a_404_problem(
    client: httpx.AsyncClient, order_id: str
) -> None:
    assert_problem(await client.get(f"{ORDERS}/{order_id}"), 404, "order-not-found")


async def test_pages_hold_every_order_exactly_once_oldest_first(
    client: httpx.AsyncClient,
) -> None:
    created = await create_orders(client, 7)

    listed = [item["order_id"] for item in await all_pages(client, limit=3)]

    assert len(listed) == len(set(listed))
    mine = [order_id for order_id in listed if order_id in set(created)]
    assert mine == created


async def test_walking_the_pages_twice_gives_the_same_sequence(client: httpx.AsyncClient) -> None:
    await create_orders(client, 3)
    assert await all_pages(client, limit=2) == await all_pages(client, limit=2)


async def test_the_last_page_says_there_is_no_next(client: httpx.AsyncClient) -> None:
    await create_orders(client, 1)
    everything = await all_pages(client, limit=500)

    response = await client.get(ORDERS, params={"limit": len(everything)})

    assert response.json()["next_after"] is None
    assert len(response.json()["items"]) == len(everything)


async def test_the_count_equals_the_orders_listed(client: httpx.AsyncClient) -> None:
    await create_orders(client, 2)
    listed = await all_pages(client, limit=500)

    response = await client.get(f"{ORDERS}/count")

    assert response.status_code == 200
    assert response.json() == {"count": len(listed)}


async def test_a_rejected_order_is_not_counted_or_listed(client: httpx.AsyncClient) -> None:
    before = (await client.get(f"{ORDERS}/count")).json()["count"]
    key = new_key()
    assert (await post_order(client, order_body(products=[]), key)).status_code == 422

    assert (await client.get(f"{ORDERS}/count")).json()["count"] == before
    assert key not in {item["request_id"] for item in await all_pages(client, limit=500)}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "-1"},
        {"limit": "501"},
        {"limit": "ten"},
        {"limit": "1.5"},
        {"limit": ""},
        {"after": "abc"},
        {"after": "-1"},
        {"after": "1" * 19},
        {"after": ""},
        {"after": "\u0661"},
    ],
    ids=lambda p: f"{next(iter(p))}={next(iter(p.values()))!r}",
)
async def test_a_bad_limit_or_cursor_is_a_400_problem(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    assert_problem(await client.get(ORDERS, params=params), 400, "invalid-parameter")
