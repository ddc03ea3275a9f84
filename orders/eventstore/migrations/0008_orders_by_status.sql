-- orders: no transaction
-- Built CONCURRENTLY: orders may hold millions of rows, and a plain CREATE INDEX would hold a
-- SHARE lock on it for the whole build, queueing every create (inline mode) behind it. That
-- needs a statement outside any transaction (see orders/eventstore/migrate.py), so each
-- statement below runs on its own. An interrupted build leaves an INVALID index of this name
-- behind; dropping it first makes the migration safe to run again.
DROP INDEX CONCURRENTLY IF EXISTS orders_status_position_idx;

CREATE INDEX CONCURRENTLY orders_status_position_idx ON orders (status, position);

COMMENT ON INDEX orders_status_position_idx IS
    'The orders in one status, oldest first, of every caller: the keyset list with ?status= '
    'for admins and the fulfilment role (a caller''s own list filters its owner range).';
