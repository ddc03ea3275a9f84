"""The gate in front of the connection pool: places go to waiters in the order they came."""

from __future__ import annotations

import asyncio

import pytest

from orders.eventstore.fair_pool import FifoGate

PATIENT = 10.0


async def _enter(gate: FifoGate, name: str, entered: list[str]) -> None:
    await gate.enter(PATIENT)
    entered.append(name)


async def _queue(gate: FifoGate, names: str, entered: list[str]) -> dict[str, asyncio.Task[None]]:
    """Start one waiter per name, in order, and return once each waits at the gate."""
    tasks = {}
    for name in names:
        tasks[name] = asyncio.create_task(_enter(gate, name, entered))
        await asyncio.sleep(0)  # lets it run up to its wait; nothing else is scheduled
    assert entered == []
    return tasks


async def test_freed_places_go_to_the_waiters_in_the_order_they_came() -> None:
    gate = FifoGate(1)
    await gate.enter(PATIENT)
    entered: list[str] = []
    waiters = await _queue(gate, "abc", entered)

    for name in "abc":
        gate.leave()
        await waiters[name]
    assert entered == ["a", "b", "c"]


async def test_a_newcomer_waits_behind_a_waiter_handed_a_place_that_has_yet_to_run() -> None:
    gate = FifoGate(2)
    await gate.enter(PATIENT)
    await gate.enter(PATIENT)
    entered: list[str] = []
    waiters = await _queue(gate, "a", entered)

    gate.leave()  # hands a place to "a", which has not run yet ...
    gate.leave()  # ... when a second place comes free
    await _enter(gate, "newcomer", entered)
    assert entered == ["a", "newcomer"]
    await waiters["a"]


async def test_a_waiter_that_gives_up_is_passed_over() -> None:
    gate = FifoGate(1)
    await gate.enter(PATIENT)
    with pytest.raises(TimeoutError):
        await gate.enter(0.01)
    entered: list[str] = []
    waiters = await _queue(gate, "b", entered)

    gate.leave()
    await waiters["b"]
    assert entered == ["b"]


async def test_a_place_handed_to_a_waiter_cancelled_meanwhile_passes_to_the_next() -> None:
    gate = FifoGate(1)
    await gate.enter(PATIENT)
    entered: list[str] = []
    waiters = await _queue(gate, "ab", entered)

    gate.leave()  # hands the place to "a" ...
    waiters["a"].cancel()  # ... which is cancelled before it could run
    with pytest.raises(asyncio.CancelledError):
        await waiters["a"]
    await waiters["b"]
    assert entered == ["b"]
    with pytest.raises(TimeoutError):
        await gate.enter(0.01)  # still one place, held by "b"
