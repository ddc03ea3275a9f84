"""Which server notices say that a commit stopped waiting for the synchronous standbys: the
fields are those PostgreSQL 18 sends when `pg_cancel_backend()` cuts the wait short (captured
from tests/failover's cluster), and variants a translated or other server may send."""

from __future__ import annotations

from typing import cast

import asyncpg
import pytest

from orders.eventstore.syncrep import SyncRepWatch, ends_sync_rep_wait

CANCELLED = {
    "S": "WARNING",
    "V": "WARNING",
    "C": "01000",
    "M": "canceling wait for synchronous replication due to user request",
    "D": "The transaction has already committed locally, but might not have been replicated"
    " to the standby.",
    "F": "syncrep.c",
    "L": "320",
    "R": "SyncRepWaitForLSN",
}
TERMINATED = {
    **CANCELLED,
    "C": "57P01",
    "M": "canceling the wait for synchronous replication and terminating connection due to"
    " administrator command",
}
# As under a non-English lc_messages: severity, message and detail translated (made-up
# texts, not PostgreSQL's catalogue), 'V' and 'R' as ever.
TRANSLATED = {
    **CANCELLED,
    "S": "WARNUNG",
    "M": "breche Warten auf synchrone Replikation ab wegen Benutzeraufforderung",
    "D": "Die Transaktion wurde lokal bereits committet, aber möglicherweise noch nicht zum"
    " Standby repliziert.",
}
WITHOUT_SOURCE = {k: v for k, v in CANCELLED.items() if k not in "FLR"}
TERMINATED_WITHOUT_SOURCE = {k: v for k, v in TERMINATED.items() if k not in "FLRD"}


def notice(fields: dict[str, str]) -> asyncpg.PostgresLogMessage:
    """As asyncpg makes it from a NoticeResponse: for a known SQLSTATE, as 57P01, an instance of
    that error's class (typed as a log message, as a listener is handed it)."""
    return cast(asyncpg.PostgresLogMessage, asyncpg.PostgresLogMessage.new(fields))


@pytest.mark.parametrize(
    "fields", [CANCELLED, TERMINATED, TRANSLATED, WITHOUT_SOURCE, TERMINATED_WITHOUT_SOURCE]
)
def test_a_cut_short_wait_is_recognised(fields: dict[str, str]) -> None:
    assert ends_sync_rep_wait(notice(fields))


@pytest.mark.parametrize(
    "fields",
    [
        {**CANCELLED, "S": "NOTICE", "V": "NOTICE"},
        {"S": "WARNING", "V": "WARNING", "C": "01000", "M": "there is no transaction in progress"},
        {"S": "WARNING", "V": "WARNING", "C": "01000", "M": "canceling something else"},
    ],
)
def test_other_notices_are_not(fields: dict[str, str]) -> None:
    assert not ends_sync_rep_wait(notice(fields))


def test_the_watch_keeps_what_it_saw() -> None:
    watch = SyncRepWatch()
    watch(None, notice({"S": "NOTICE", "V": "NOTICE", "C": "00000", "M": "hello"}))  # type: ignore[arg-type]
    assert not watch.cut_short
    watch(None, notice(CANCELLED))  # type: ignore[arg-type]
    watch(None, notice({"S": "NOTICE", "V": "NOTICE", "C": "00000", "M": "hello"}))  # type: ignore[arg-type]
    assert watch.cut_short
