"""Two `orders serve` processes on one database: one key still yields one order, however the
duplicates are spread over the processes and however concurrently they arrive."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from tests.processes.clients import Attempts, create_order, order_payload, recorded
from tests.processes.services import Service, served

pytestmark = pytest.mark.slow

SAME_KEY_REQUESTS = 120
KEYS = 80
DUPLICATES_PER_KEY = 4


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def services(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Service, Service]]:
    logs = tmp_path_factory.mktemp("logs")
    async with served(database_url, logs) as first, served(database_url, logs) as second:
        yield first, second


def http_client() -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    return httpx.AsyncClient(limits=limits, timeout=30.0)


def assert_one_answer_per_key(attempts_by_key: dict[str, list[Attempts]]) -> None:
    for key, attempts in attempts_by_key.items():
        answers = {(a.answer.status, a.answer.body) for a in attempts}
        assert len(answers) == 1, f"{key}: {len(answers)} different answers"
        assert all(a.dropped_connections == 0 for a in attempts)
        assert all(a.answer.status < 500 for a in attempts)


def report(label: str, attempts: list[Attempts]) -> None:
    statuses = Counter(a.answer.status for a in attempts)
    retried = Counter(s for a in attempts for s in a.retried_statuses)
    replayed = sum(a.answer.headers["Idempotent-Replayed"] == "true" for a in attempts)
    print(
        f"\n{label}: {len(attempts)} requests, final {dict(statuses)}, "
        f"{replayed} replays, retried after {dict(retried)}"
    )


async def test_concurrent_duplicates_of_one_key_over_two_processes_make_one_order(
    services: tuple[Service, Service], database_url: str
) -> None:
    key = f"same-{uuid.uuid4()}"
    payload = order_payload()
    urls = [service.base_url for service in services]

    async with http_client() as client:
        attempts = await asyncio.gather(
            *(
                create_order(client, [urls[i % 2]], key, payload, retry_dropped=False)
                for i in range(SAME_KEY_REQUESTS)
            )
        )

    report("one key", attempts)
    assert_one_answer_per_key({key: attempts})
    assert attempts[0].answer.status == 201
    replays = [a.answer.headers["Idempotent-Replayed"] for a in attempts]
    assert replays.count("false") == 1
    found = await recorded(database_url, [key])
    assert found.events == {key: 1}
    assert found.orders == {key: [uuid.UUID(attempts[0].answer.order_id)]}


async def test_shuffled_duplicates_of_many_keys_over_two_processes_make_one_order_per_key(
    services: tuple[Service, Service], database_url: str
) -> None:
    keys = [f"many-{uuid.uuid4()}" for _ in range(KEYS)]
    payloads = {key: order_payload(quantity=n + 1) for n, key in enumerate(keys)}
    sends = [key for key in keys for _ in range(DUPLICATES_PER_KEY)]
    random.shuffle(sends)
    urls = [service.base_url for service in services]

    async with http_client() as client:
        attempts = await asyncio.gather(
            *(create_order(client, urls, key, payloads[key], retry_dropped=False) for key in sends)
        )

    report("many keys", attempts)
    by_key: dict[str, list[Attempts]] = {key: [] for key in keys}
    for key, attempt in zip(sends, attempts, strict=True):
        by_key[key].append(attempt)
    assert_one_answer_per_key(by_key)
    assert all(a.answer.status == 201 for a in attempts)
    found = await recorded(database_url, keys)
    assert found.events == dict.fromkeys(keys, 1)
    assert found.orders == {key: [uuid.UUID(by_key[key][0].answer.order_id)] for key in keys}
