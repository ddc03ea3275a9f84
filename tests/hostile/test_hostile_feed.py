"""Hostile feed requests: every malformed, forged or out-of-range cursor, limit or wait is a 400
problem, never a 5xx; so is a parameter sent twice; and on the wire, bytes no client should
send in a query string."""

from __future__ import annotations

import base64
import struct

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orders.api.feed_query import InvalidCursor, decode_cursor, encode_cursor
from orders.eventstore import Position
from tests.api.helpers import PROBLEM_JSON, assert_problem
from tests.feed.feed import EVENTS, page_of
from tests.hostile.support import exchange


def forged(layout: str, *values: int) -> str:
    return base64.urlsafe_b64encode(struct.pack(layout, *values)).rstrip(b"=").decode()


VALID = encode_cursor(Position(1234, 56))
HOSTILE_CURSORS = [
    "",
    "0",
    "not-a-cursor",
    VALID[:-1],
    VALID + "A",
    VALID + "=",
    VALID[:-1] + "B",  # spare bits set in the last character: not a spelling we issue
    VALID.replace(VALID[3], "+" if VALID[3] != "+" else "/"),
    forged(">BQQ", 2, 1, 1),  # an unknown version
    forged(">BQQ", 0, 1, 1),
    forged(">BQQ", 1, 1, 2**63),  # a position beyond bigint
    forged(">BQQ", 1, 2**64 - 1, 2**64 - 1),
    forged(">BQQQ", 1, 1, 1, 1),
    "' OR 1=1 --",
    "$1",
    "A" * 10_000,
    "ÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄ",
    "\x00" * 23,
    VALID + "\n",
    " " + VALID,
]
HOSTILE_LIMITS = [
    "0",
    "501",
    "-1",
    "+5",
    "5.0",
    "1e2",
    "0x10",
    "",
    " 5",
    "five",
    "9" * 400,
    "\u0665",
]  # an Arabic-Indic five
HOSTILE_WAITS = ["31", "-1", "1.5", "+1", "", "soon", "9" * 400, "NaN", "inf", "\u0663"]


@pytest.mark.parametrize("cursor", HOSTILE_CURSORS)
async def test_a_hostile_cursor_is_a_400_problem(client: httpx.AsyncClient, cursor: str) -> None:
    answer = await client.get(EVENTS, params={"after": cursor})
    assert_problem(answer, 400, "invalid-parameter")


@pytest.mark.parametrize("limit", HOSTILE_LIMITS)
async def test_a_hostile_limit_is_a_400_problem(client: httpx.AsyncClient, limit: str) -> None:
    answer = await client.get(EVENTS, params={"limit": limit})
    assert_problem(answer, 400, "invalid-parameter")


@pytest.mark.parametrize("wait", HOSTILE_WAITS)
async def test_a_hostile_wait_is_a_400_problem(client: httpx.AsyncClient, wait: str) -> None:
    answer = await client.get(EVENTS, params={"wait": wait})
    assert_problem(answer, 400, "invalid-parameter")


@pytest.mark.parametrize("name", ["after", "limit", "wait"])
async def test_a_parameter_sent_twice_is_refused_not_guessed_at(
    client: httpx.AsyncClient, name: str
) -> None:
    value = {"after": VALID, "limit": "5", "wait": "0"}[name]
    answer = await client.get(EVENTS, params=[(name, value), (name, value)])
    assert_problem(answer, 400, "invalid-parameter")


async def test_the_bounds_themselves_are_accepted(client: httpx.AsyncClient) -> None:
    for query in ("?limit=1", "?limit=500", "?wait=0", f"?after={VALID}&limit=500&wait=0"):
        page_of(await client.get(f"{EVENTS}{query}"))


async def test_a_cursor_from_beyond_the_end_is_an_empty_page_not_an_error(
    client: httpx.AsyncClient,
) -> None:
    far = encode_cursor(Position(2**64 - 1, 2**63 - 1))
    page = page_of(await client.get(EVENTS, params={"after": far}))
    assert page.events == [] and page.cursor == far


@given(st.text(max_size=40))
@settings(max_examples=300)
def test_only_issued_cursors_decode(text: str) -> None:
    try:
        place = decode_cursor(text)
    except InvalidCursor:
        return
    assert encode_cursor(place) == text


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**63 - 1))
def test_every_place_has_a_cursor_that_decodes_to_it(tx_id: int, position: int) -> None:
    place = Position(tx_id, position)
    assert decode_cursor(encode_cursor(place)) == place


@pytest.mark.parametrize(
    "query",
    [b"after=%zz", b"after=%00", b"after=%ff%fe", b"limit=%00", b"wait=%ff", b"after"],
)
async def test_undecodable_bytes_in_the_query_are_refused_on_the_wire(
    server: tuple[str, int], query: bytes
) -> None:
    request = b"GET /api/v1/events?" + query + b" HTTP/1.1\r\nHost: orders\r\n\r\n"
    status, headers, _ = await exchange(server, request)
    assert 400 <= status < 500
    assert headers["content-type"] == PROBLEM_JSON
