"""The classic idempotency check under load: every user repeats create, create again with the
same key, count. A few users all share one key; the rest use a fresh key per round.

Run by `tests/load/run.py`, which starts the service and checks the database afterwards. What
the users saw (answers per status, order ids per accepted key, dropped connections) is written
as JSON to `$LOAD_REPORT` when locust quits.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter, defaultdict
from typing import Any

from locust import HttpUser, constant, events, task

ORDERS = "/api/v1/orders"
PAYLOAD = {
    "products": [{"id": 7, "name": "book", "price": 1500, "quantity": 1}],
    "shipping_to": "1 Main St",
}
SHARED_KEY = f"load-shared-{uuid.uuid4()}"
# Answers a user may get without anything being wrong: created, replayed, or (for the shared
# key only) "the first request with this key is still being written".
EXPECTED = frozenset({201, 409})


class Tally:
    """What all users saw; locust users run as greenlets in one thread, so no lock is needed."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.dropped = 0
        self.order_ids: defaultdict[str, set[str]] = defaultdict(set)

    def as_json(self) -> dict[str, Any]:
        return {
            "statuses": {str(status): n for status, n in self.statuses.items()},
            "dropped": self.dropped,
            "order_ids": {key: sorted(ids) for key, ids in self.order_ids.items()},
        }


TALLY = Tally()


class OrdersUser(HttpUser):
    abstract = True
    wait_time = constant(0)

    def next_key(self) -> str:
        raise NotImplementedError

    @task
    def create_twice_then_count(self) -> None:
        key = self.next_key()
        self.create(key)
        self.create(key)
        with self.client.get(f"{ORDERS}/count", name="count", catch_response=True) as answer:
            self.record(answer, expected=frozenset({200}))

    def create(self, key: str) -> None:
        with self.client.post(
            ORDERS,
            json=PAYLOAD,
            headers={"Idempotency-Key": key},
            name="create",
            catch_response=True,
        ) as answer:
            if answer.status_code == 201:
                TALLY.order_ids[key].add(answer.json()["order_id"])
            self.record(answer, expected=EXPECTED)

    def record(self, answer: Any, *, expected: frozenset[int]) -> None:
        if answer.status_code == 0:  # no HTTP answer at all: the connection failed
            TALLY.dropped += 1
            answer.failure(f"connection failed: {answer.error}")
            return
        TALLY.statuses[answer.status_code] += 1
        if answer.status_code in expected:
            answer.success()
        else:
            answer.failure(f"unexpected status {answer.status_code}")


class SharedKeyUser(OrdersUser):
    weight = 1

    def next_key(self) -> str:
        return SHARED_KEY


class UniqueKeyUser(OrdersUser):
    weight = 4

    def next_key(self) -> str:
        return f"load-{uuid.uuid4()}"


@events.quitting.add_listener  # type: ignore[untyped-decorator]  # locust leaves it unannotated
def write_report(**_: Any) -> None:
    with open(os.environ["LOAD_REPORT"], "w", encoding="utf-8") as report:
        json.dump(TALLY.as_json(), report)
