"""Every statement the event store runs, one constant per job, with the reason for each lock.

Appends run under READ COMMITTED (the default). Nothing here takes an explicit lock: the
unique constraint on (stream_id, version) decides every race. A second writer of the same
stream waits on the first one's uncommitted row (bounded by `lock_timeout`) and then fails
with a unique violation, which the store turns into StreamAlreadyExists/WrongExpectedVersion.
"""

# The appended rows are exposed as `new_events` so that an inline projection can follow in
# the same statement (one round trip, one transaction); `{then}` is that projection's SQL or
# nothing. $2 is the expected version: 0 for "no stream" (version 1 then conflicts if the
# stream exists, so the current version need not be read), NULL for "any", else exact. For an
# exact version the guard compares with the stream's current version; two writers that both
# pass it still collide on the unique constraint.
APPEND = """
WITH current_version AS (
    SELECT CASE WHEN $2::integer = 0 THEN 0
                ELSE (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1)
           END AS version
), new_events AS (
    INSERT INTO events (stream_id, version, event_type, data, metadata)
    SELECT $1, current_version.version + e.ord, e.event_type, e.data, e.metadata
    FROM current_version,
         unnest($3::text[], $4::jsonb[], $5::jsonb[])
             WITH ORDINALITY AS e(event_type, data, metadata, ord)
    WHERE $2::integer IS NULL OR current_version.version = $2::integer
    ORDER BY e.ord
    RETURNING position, stream_id, version, event_type, data, metadata, tx_id, recorded_at
){then}
SELECT position, stream_id, version, event_type, data, metadata, tx_id, recorded_at
FROM new_events ORDER BY position
"""

# One event for each of many existing streams, each at the version after the one its writer
# read (compare-and-set, as APPEND with an exact version): one statement and one commit for the
# concurrent lifecycle commands of a process (group commit). Never ON CONFLICT DO NOTHING: an
# append that collides is refused, and its writer reads the stream again and decides again.
# - A member whose stream is not at its expected version on the statement's snapshot inserts
#   nothing and returns no row; the caller reads those streams' versions in a new statement
#   (STREAM_VERSIONS), which sees the writers that won.
# - A member that passes its guard but collides on the unique (stream, version), with a writer
#   that committed after the snapshot or was still in flight (waited for, bounded by
#   lock_timeout), fails the whole statement with a unique violation: nothing is appended, and
#   the caller appends the members one by one (APPEND) so that only the real loser is refused.
# - Lock order: stream ids arrive distinct and sorted and rows are inserted in that order
#   (WITH ORDINALITY), so two batches wait on each other's rows only in ascending stream order,
#   never in a cycle. The projection in `{then}` updates one order row per stream appended, so
#   two statements that both got that far share none.
APPEND_EACH = """
WITH new_events AS (
    INSERT INTO events (stream_id, version, event_type, data, metadata)
    SELECT a.stream_id, a.expected + 1, a.event_type, a.data, a.metadata
    FROM unnest($1::text[], $2::integer[], $3::text[], $4::jsonb[], $5::jsonb[])
             WITH ORDINALITY AS a(stream_id, expected, event_type, data, metadata, ord)
    WHERE a.expected = (SELECT coalesce(max(e.version), 0) FROM events e
                        WHERE e.stream_id = a.stream_id)
    ORDER BY a.ord
    RETURNING position, stream_id, version, event_type, data, metadata, tx_id, recorded_at
){then}
SELECT position, stream_id, version, event_type, data, metadata, tx_id, recorded_at
FROM new_events
"""

# The replication barrier. Cancelling a commit's wait for the synchronous standbys (the
# service's statement timeout does) leaves the transaction committed on the primary alone,
# and visible: a later read finds a row that a failover can still lose. But every transaction
# that writes WAL waits at its commit for the standbys to hold all WAL up to its commit record,
# which follows every row visible to it. So an answer given from a row this process did not itself
# commit is given only after such a commit. This message is the cheapest write there is: a
# transactional logical message touches no table, takes no lock, and is ignored by every
# reader but a logical decoder; it is WAL written under a transaction id, which is what makes
# a commit wait (an id alone, as pg_current_xact_id() takes, writes no WAL and waits for
# nothing).
# The mode (store.BarrierMode) is a parameter: "auto" asks the server at each
# statement whether synchronous standbys are configured, so a failover manager may change them
# at any time; "off" never gets here.
ENSURE_REPLICATED = """
SELECT pg_logical_emit_message(true, 'orders.replication_barrier', '')
WHERE $1::text = 'always'
   OR ($1::text = 'auto' AND current_setting('synchronous_standby_names') <> '')
"""

# The first event of each of many new streams, or the first event already there: one round trip
# and one commit for a lone request, for an ordinary retry and for a batch of concurrent creates
# (group commit) alike. ON CONFLICT DO NOTHING waits for a concurrent uncommitted insert of the
# same stream (bounded by lock_timeout) and then inserts nothing, so no error is raised, logged
# or rolled back. Three more rules:
# - Lock order: stream ids arrive distinct (the store dedupes them) and sorted, and rows are
#   inserted in that order (WITH ORDINALITY), so every statement waits on other transactions'
#   rows in ascending stream id order and two batches sharing streams never wait on each other
#   in a cycle. The projection in `{then}` locks its counter rows only after every event row
#   (its counts aggregate over all of them), in an order of its own.
# - The second branch reads the streams not inserted here on the statement's snapshot. It
#   finds nothing for a stream whose winner committed after that snapshot was taken (while
#   this statement waited for it); the caller reads those again in a new statement
#   (READ_FIRST_EVENTS). The anti-join runs first, so a batch of new streams probes no index.
# - The barrier ($5, the mode, as in ENSURE_REPLICATED): a batch of replays alone inserts
#   nothing. It takes a transaction id (the tx_id default is evaluated for every candidate
#   row) but writes no WAL, and a commit that wrote no WAL does not wait for the standbys:
#   the statement would return at once. With the message it waits, and the
#   statement returns only once they hold every row it returns, and every row a conflict made
#   it wait for (committed before this statement's commit record, so READ_FIRST_EVENTS needs
#   no barrier of its own). MATERIALIZED: evaluated once. It is joined into the INSERT's rows
#   because PostgreSQL skips a plain CTE that nothing reads; a one-row CTE times at least one
#   row is always read, so the message is always written when wanted.
START_STREAMS = """
WITH replication_barrier AS MATERIALIZED (
    SELECT CASE WHEN $5::text = 'always'
                  OR ($5::text = 'auto' AND current_setting('synchronous_standby_names') <> '')
           THEN pg_logical_emit_message(true, 'orders.replication_barrier', '')
           END AS lsn
), new_events AS (
    INSERT INTO events (stream_id, version, event_type, data, metadata)
    SELECT s.stream_id, 1, s.event_type, s.data, s.metadata
    FROM replication_barrier,
         unnest($1::text[], $2::text[], $3::jsonb[], $4::jsonb[])
             WITH ORDINALITY AS s(stream_id, event_type, data, metadata, ord)
    ORDER BY s.ord
    ON CONFLICT ON CONSTRAINT events_stream_version_key DO NOTHING
    RETURNING position, stream_id, version, event_type, data, metadata, tx_id, recorded_at
){then}
SELECT true AS started,
       position, stream_id, version, event_type, data, metadata, tx_id, recorded_at
FROM new_events
UNION ALL
SELECT false, e.position, e.stream_id, e.version, e.event_type, e.data, e.metadata, e.tx_id,
       e.recorded_at
FROM unnest($1::text[]) AS s(stream_id)
JOIN events e ON e.stream_id = s.stream_id AND e.version = 1
WHERE NOT EXISTS (SELECT FROM new_events n WHERE n.stream_id = s.stream_id)
"""

# The first events of the streams `$1`, in a statement of their own (so on a new snapshot).
READ_FIRST_EVENTS = """
SELECT position, stream_id, version, event_type, data, metadata, tx_id, recorded_at
FROM events WHERE stream_id = ANY($1::text[]) AND version = 1
"""

# A stream's current version (0: no stream), read after a conflicting append.
STREAM_VERSION = "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1"

# The current versions of the streams `$1` (0: no stream), read after their appends in one
# APPEND_EACH were refused: one index probe per stream, each the newest (stream, version).
STREAM_VERSIONS = """
SELECT s.stream_id,
       coalesce((SELECT max(e.version) FROM events e WHERE e.stream_id = s.stream_id), 0)
           AS version
FROM unnest($1::text[]) AS s(stream_id)
"""

READ_STREAM = """
SELECT position, stream_id, version, event_type, data, metadata, tx_id, recorded_at
FROM events WHERE stream_id = $1 ORDER BY version
"""

# Gap safety: positions come from a sequence and are taken before commit, so a transaction
# holding position 10 can commit after one holding 11. A reader that checkpointed at 11 would
# skip 10 forever. Instead readers go in (tx_id, position) order and only read rows whose
# transaction is older than the oldest one still running (the snapshot's xmin): every such
# transaction has committed or aborted, so no row can appear before the returned ones later.
# Writers are never blocked; a reader merely lags behind the oldest open transaction.
READ_ALL = """
SELECT position, stream_id, version, event_type, data, metadata, tx_id, recorded_at
FROM events
WHERE (tx_id, position) > ($1::xid8, $2::bigint)
  AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY tx_id, position
LIMIT $3
"""

# The newest position in read_all order among committed, safely readable events.
HEAD = """
SELECT tx_id, position FROM events
WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY tx_id DESC, position DESC
LIMIT 1
"""

NOTIFY = "SELECT pg_notify($1, '')"
