"""Coalescing: concurrent calls of one store operation share statements (and commits) under
load, with no timer. `GroupCommit`, `GroupAppend` and the read model's order lookups use it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Generic, NamedTuple, TypeVar

from orders.eventstore.errors import StoreUnavailable

MAX_IN_FLIGHT: Final = 1
MAX_BATCH: Final = 64


class Batch(NamedTuple):
    """What one statement carried: how many items (starts, appends, reads), and whether they
    had waited for it."""

    size: int
    queued: bool


T = TypeVar("T")
R = TypeVar("R")


class _Queued(NamedTuple, Generic[T, R]):
    item: T
    answer: asyncio.Future[R]


class Coalescer(Generic[T, R]):
    """Coalesces concurrent calls of an operation that has a form for one item (`one`) and a
    form for many in one statement (`many`, an outcome for each item in order: its result or
    its error); `stream_of` names the stream (or row) an item is about.

    While fewer than `max_in_flight` statements of this instance are in flight, an item goes
    out at once on its own (`one`), so a lone request waits for nothing. Otherwise it queues,
    and the queue goes out as one statement (`many`) as soon as a statement returns or
    `max_batch` items have queued, whichever comes first. A batch that fails with
    StoreUnavailable fails every item; one that fails otherwise (a lock timeout, a row the
    database refuses) is retried one item at a time, unless all its items are about one
    stream, so only the culprit fails. `on_batch` sees each statement's size."""

    def __init__(
        self,
        one: Callable[[T], Awaitable[R]],
        many: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]],
        stream_of: Callable[[T], str],
        *,
        max_in_flight: int,
        max_batch: int,
        on_batch: Callable[[Batch], None] | None,
    ) -> None:
        self._one = one
        self._many = many
        self._stream_of = stream_of
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._on_batch = on_batch
        self._in_flight = 0
        self._queue: list[_Queued[T, R]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """`one(item)`'s result, from a statement of its own or from a batch's."""
        if self._in_flight < self._max_in_flight and not self._queue:
            self._sent(1, queued=False)
            try:
                return await self._one(item)
            finally:
                self._returned()
        answer: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(item, answer))
        if len(self._queue) >= self._max_batch:
            self._send_queue()
        return await answer

    def _sent(self, size: int, *, queued: bool) -> None:
        self._in_flight += 1
        if self._on_batch is not None:
            self._on_batch(Batch(size, queued))

    def _returned(self) -> None:
        """A statement has returned: its slot goes to what has queued meanwhile."""
        self._in_flight -= 1
        if self._queue:
            self._send_queue()

    def _send_queue(self) -> None:
        batch = self._queue[: self._max_batch]
        del self._queue[: self._max_batch]
        self._sent(len(batch), queued=True)
        task = asyncio.create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Queued[T, R]]) -> None:
        try:
            try:
                outcomes = await self._many([q.item for q in batch])
            finally:
                self._returned()
        except StoreUnavailable as exc:
            _answer(batch, [exc] * len(batch))
        except Exception as exc:  # AppendBlocked, or a row the database refused
            if len({self._stream_of(q.item) for q in batch}) == 1:
                _answer(batch, [exc] * len(batch))
            else:
                await self._one_by_one(batch)
        except BaseException:
            for queued in batch:
                queued.answer.cancel()
            raise
        else:
            _answer(batch, outcomes)

    async def _one_by_one(self, batch: list[_Queued[T, R]]) -> None:
        """Each item of a failed batch on its own, at once: only the culprit fails."""
        outcomes = await asyncio.gather(*(self._one(q.item) for q in batch), return_exceptions=True)
        _answer(batch, outcomes)


def _answer(batch: Sequence[_Queued[T, R]], outcomes: Sequence[R | BaseException]) -> None:
    for queued, outcome in zip(batch, outcomes, strict=True):
        if queued.answer.done():  # its caller has gone (cancelled)
            continue
        if isinstance(outcome, BaseException):
            queued.answer.set_exception(outcome)
        else:
            queued.answer.set_result(outcome)
