"""A commit whose wait for the synchronous standbys was cut short: told apart from one they
confirmed, although PostgreSQL reports both as success.

With synchronous replication a commit waits until the standbys hold it. A query cancel that
arrives during that wait (`pg_cancel_backend()`, from an operator, a tool, a pooler) cannot
undo the commit, which the primary has already made and made visible: PostgreSQL ends the wait
with a WARNING and lets the statement succeed (src/backend/replication/syncrep.c,
`SyncRepWaitForLSN`, unchanged since 9.1):

- cancel: no SQLSTATE of its own (`01000`, the generic warning), message "canceling wait for
  synchronous replication due to user request";
- terminate (`pg_terminate_backend()`, a shutdown): `57P01`, message "canceling the wait for
  synchronous replication and terminating connection due to administrator command"; the
  connection then ends, so the statement fails anyway, but if the warning gets out first it
  is the same fact;
- both with the detail "The transaction has already committed locally, but might not have
  been replicated to the standby."

Such a commit is on the primary alone, and a failover may lose it: it must not be answered as
acknowledged. The statement's own timeout (asyncpg's `command_timeout`) cancels the same way,
but asyncpg raises TimeoutError at the deadline without waiting for the server, so that case
never gets here.

The message and detail are translated when the server's `lc_messages` is not English (and
only a superuser may change it), so the notice is recognised first by the fields PostgreSQL
never translates: the C function that raised it (`R`, always sent to the client) and the
severity (`V`, since 9.6), and only failing those by the English texts. Matched this way, a
warning from anywhere in the sync-rep wait counts: no other path of that function warns.
"""

from __future__ import annotations

from typing import Any, Final

import asyncpg
from asyncpg.pool import PoolConnectionProxy

SYNC_REP_WAIT_FUNCTION: Final = "SyncRepWaitForLSN"
SYNC_REP_DETAIL: Final = (
    "The transaction has already committed locally, but might not have been replicated to the"
    " standby."
)
SYNC_REP_MESSAGES: Final = (
    "canceling wait for synchronous replication",  # a query cancel
    "canceling the wait for synchronous replication",  # a termination
)


def ends_sync_rep_wait(message: asyncpg.PostgresLogMessage) -> bool:
    """Whether the server sent `message` because it stopped waiting for the synchronous
    standbys to confirm a commit that it had already made locally. (Typed as the listener is
    handed it; asyncpg makes a notice with a known SQLSTATE, as 57P01, an instance of that
    error's class instead, with the same fields.)"""
    severity = message.severity_en or message.severity or ""
    if severity.upper() != "WARNING":
        return False
    if message.server_source_function == SYNC_REP_WAIT_FUNCTION:
        return True
    return message.detail == SYNC_REP_DETAIL or (message.message or "").startswith(
        SYNC_REP_MESSAGES
    )


class SyncRepWatch:
    """A log listener (`Connection.add_log_listener`) for one statement: `cut_short` once the
    server has said that the statement's commit stopped waiting for the standbys.

    Why the flag is final once the statement's `await` returns: PostgreSQL sends the warning
    during the commit, before ReadyForQuery. asyncpg reads the messages of a statement in the
    order they came (`CoreProtocol._read_server_messages`): a NoticeResponse makes
    `Connection._process_log_message` schedule this listener with `loop.call_soon`, and only the
    later ReadyForQuery resolves the statement's waiter future (`_push_result` ->
    `_on_result`), whose done callback, the awaiting task's wakeup, is scheduled with
    `call_soon` too. The event loop runs its ready callbacks in FIFO order (asyncio and uvloop
    alike), so the listener has run before the statement's coroutine resumes, whether both
    messages came in one read or the warning in an earlier one."""

    __slots__ = ("cut_short",)

    def __init__(self) -> None:
        self.cut_short = False

    def __call__(
        self,
        connection: asyncpg.Connection[Any] | PoolConnectionProxy[Any],
        message: asyncpg.PostgresLogMessage,
        /,
    ) -> None:
        if ends_sync_rep_wait(message):
            self.cut_short = True
