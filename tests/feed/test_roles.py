"""Who may read the feed (its events carry addresses): admins and the events role, from a
gateway's roles header or a token's claims; with ORDERS_AUTH=none, everyone; anyone else 403,
and no identity 401, whatever the parameters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from orders.settings import Settings
from tests.api.helpers import assert_problem, new_key, order_body, post_order
from tests.auth.tokens import bearer, jwt_settings
from tests.feed.feed import EVENTS, page_of, service

EVENTS_ROLE = "shop:events"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(pool_size=2, auth="gateway", events_role=EVENTS_ROLE)
    async with service(database_url, settings) as (_, client):
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def jwt(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with service(database_url, jwt_settings(pool_size=2)) as (_, client):
        yield client


def as_caller(name: str, *roles: str) -> dict[str, str]:
    return {"X-User-Id": name, "X-User-Roles": ", ".join(roles)}


@pytest.mark.parametrize(
    "headers",
    [as_caller("feed-reader", EVENTS_ROLE), as_caller("ops", "orders:admin", "other")],
    ids=["events role", "admin"],
)
async def test_the_events_role_and_admins_read_the_feed_through_the_gateway(
    gateway: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    created = await post_order(gateway, order_body(), new_key(), headers=as_caller("alice"))

    page = page_of(await gateway.get(f"{EVENTS}?limit=500", headers=headers))

    assert created.json()["order_id"] in {event["subject"] for event in page.events}


@pytest.mark.parametrize(
    "headers",
    [
        as_caller("alice"),
        as_caller("warehouse", "orders:fulfilment"),
        as_caller("mallory", "orders:events"),  # the default name, not this service's
    ],
    ids=["owner", "fulfilment", "another role name"],
)
@pytest.mark.parametrize("query", ["", "?after=not-a-cursor&limit=0&wait=99"])
async def test_other_callers_are_forbidden_whatever_they_ask(
    gateway: httpx.AsyncClient, headers: dict[str, str], query: str
) -> None:
    assert_problem(await gateway.get(f"{EVENTS}{query}", headers=headers), 403, "forbidden")


async def test_without_an_identity_the_gateway_mode_answers_401(
    gateway: httpx.AsyncClient,
) -> None:
    refused = await gateway.get(f"{EVENTS}?wait=30")

    assert_problem(refused, 401, "unauthenticated")
    assert "WWW-Authenticate" in refused.headers


@pytest.mark.parametrize(
    "claims",
    [{"scope": "openid orders:events"}, {"roles": ["orders:events"]}, {"scp": "orders:admin"}],
    ids=["scope", "roles", "admin scp"],
)
async def test_a_token_with_the_events_or_admin_role_reads_the_feed(
    jwt: httpx.AsyncClient, claims: dict[str, object]
) -> None:
    page_of(await jwt.get(EVENTS, headers=bearer("feed-reader", **claims)))


async def test_a_token_without_the_role_is_forbidden_and_no_token_is_401(
    jwt: httpx.AsyncClient,
) -> None:
    forbidden = await jwt.get(EVENTS, headers=bearer("alice", scope="orders:fulfilment"))
    assert_problem(forbidden, 403, "forbidden")
    unauthenticated = await jwt.get(EVENTS)
    assert_problem(unauthenticated, 401, "unauthenticated")
    assert unauthenticated.headers["WWW-Authenticate"].startswith("Bearer ")
    invalid = await jwt.get(EVENTS, headers={"Authorization": "Bearer not.a.token"})
    assert_problem(invalid, 401, "unauthenticated")


async def test_without_authentication_everyone_reads_the_feed(
    client: httpx.AsyncClient,
) -> None:
    page_of(await client.get(EVENTS))
