"""The in-memory record of outcomes is bounded and forgets the oldest first."""

from __future__ import annotations

from datetime import UTC, datetime

from orders.domain.events import OrderRejected
from orders.recorded_outcomes import RecordedOutcomes


def rejection(key: str) -> OrderRejected:
    return OrderRejected(key, "no_products", "none", datetime(2026, 1, 1, tzinfo=UTC), "f")


def test_the_oldest_outcome_is_forgotten_first_when_full() -> None:
    outcomes: RecordedOutcomes[str, OrderRejected] = RecordedOutcomes(capacity=2)
    for key in ("a", "b", "c"):
        outcomes.remember(key, rejection(key))

    assert outcomes.get("a") is None
    assert outcomes.get("b") == rejection("b")
    assert outcomes.get("c") == rejection("c")


def test_a_capacity_of_zero_remembers_nothing() -> None:
    outcomes: RecordedOutcomes[str, OrderRejected] = RecordedOutcomes(capacity=0)
    outcomes.remember("a", rejection("a"))

    assert outcomes.get("a") is None
