"""After a load run: compare what the clients were told with what the database recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

# Every key with more than one order, and every stream with more than one event (a create
# appends exactly one): both must be empty.
_DOUBLED_ORDERS = "SELECT request_id FROM orders GROUP BY request_id HAVING count(*) > 1"
_DOUBLED_STREAMS = "SELECT stream_id FROM events GROUP BY stream_id HAVING count(*) > 1"
_TOTALS = """
SELECT (SELECT count(*) FROM orders) AS orders,
       (SELECT count(*) FROM events) AS events,
       (SELECT coalesce(sum(n), 0) FROM order_counts) AS counted
"""
_ORDERS_OF = "SELECT request_id, order_id::text FROM orders WHERE request_id = ANY($1::text[])"


@dataclass
class Figures:
    requests: int
    statuses: dict[str, int]
    dropped: int
    accepted_keys: int
    orders: int
    events: int
    counted: int
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        lines = [
            f"requests answered: {self.requests} {self.statuses}",
            f"dropped connections: {self.dropped}",
            f"distinct accepted keys: {self.accepted_keys}",
            f"orders: {self.orders}, events: {self.events}, order count: {self.counted}",
        ]
        verdict = ["PASSED"] if self.passed else ["FAILED:", *self.problems]
        return "\n".join([*lines, *verdict])


async def verify(database_url: str, report: dict[str, Any]) -> Figures:
    """Orders == distinct accepted keys, no key with two orders, each accepted key's order is
    the one its clients were told, zero 5xx, zero dropped connections."""
    order_ids: dict[str, list[str]] = report["order_ids"]
    statuses: dict[str, int] = report["statuses"]
    conn = await asyncpg.connect(database_url)
    try:
        totals = await conn.fetchrow(_TOTALS)
        doubled = await conn.fetch(_DOUBLED_ORDERS)
        doubled_streams = await conn.fetch(_DOUBLED_STREAMS)
        stored: dict[str, str] = {
            row["request_id"]: row["order_id"]
            for row in await conn.fetch(_ORDERS_OF, list(order_ids))
        }
    finally:
        await conn.close()
    assert totals is not None  # a SELECT without FROM answers one row
    figures = Figures(
        requests=sum(statuses.values()),
        statuses=dict(sorted(statuses.items())),
        dropped=report["dropped"],
        accepted_keys=len(order_ids),
        orders=totals["orders"],
        events=totals["events"],
        counted=totals["counted"],
    )
    checks = {
        "no answer was a 5xx": not any(status.startswith("5") for status in statuses),
        "no connection was dropped": figures.dropped == 0,
        "orders == distinct accepted keys": figures.orders == figures.accepted_keys,
        "the order count == orders": figures.counted == figures.orders,
        "no key has two orders": not doubled,
        "no stream has two events": not doubled_streams,
        "every accepted key was told one order id": all(len(i) == 1 for i in order_ids.values()),
        "each accepted key's order is the one its clients were told": all(
            stored.get(key) == ids[0] for key, ids in order_ids.items()
        ),
        "some orders were taken": figures.orders > 0,
    }
    figures.problems = [name for name, held in checks.items() if not held]
    return figures
