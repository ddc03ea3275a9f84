"""Waits on the module's service: one with nothing new ends with an empty page and the same
cursor; one with events after the cursor does not wait."""

from __future__ import annotations

import time

import httpx

from tests.api.helpers import new_key, order_body, post_order
from tests.feed.feed import page_of, read_to_the_end


async def test_a_wait_with_nothing_new_ends_with_an_empty_page_and_the_same_cursor(
    client: httpx.AsyncClient,
) -> None:
    _, caught_up = await read_to_the_end(client)
    started = time.monotonic()

    page = page_of(await client.get(f"{caught_up.next}&wait=1", timeout=30))

    assert time.monotonic() - started < 1 + 10
    assert page.events == []
    assert page.cursor == caught_up.cursor
    assert page.next == f"{caught_up.next}&wait=1"


async def test_a_wait_with_events_after_the_cursor_answers_at_once(
    client: httpx.AsyncClient,
) -> None:
    _, caught_up = await read_to_the_end(client)
    created = await post_order(client, order_body(), new_key())
    started = time.monotonic()

    page = page_of(await client.get(f"{caught_up.next}&wait=30", timeout=60))

    assert time.monotonic() - started < 30 / 3
    assert [event["subject"] for event in page.events] == [created.json()["order_id"]]
