"""Outcomes this process has seen recorded, the newest of them, to answer retries from memory."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RecordedOutcomes(Generic[K, V]):
    """Outcomes this process has seen recorded, the newest `capacity` of them.

    Serving these from memory is exactly as correct as asking the database: an outcome is an
    event of its stream (a create's is the first), and events are never changed or removed
    (the database refuses it). So a retry storm on recent keys costs no round trip; an older
    key costs one.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._outcomes: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self._outcomes.get(key)

    def remember(self, key: K, outcome: V) -> None:
        if self._capacity <= 0:
            return
        if len(self._outcomes) >= self._capacity:
            # Oldest first: dicts keep insertion order.
            del self._outcomes[next(iter(self._outcomes))]
        self._outcomes[key] = outcome
