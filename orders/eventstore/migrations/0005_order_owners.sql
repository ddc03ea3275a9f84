-- Orders belong to a caller. Expand only: the previous release keeps running against this
-- schema while it rolls out (it writes no owner, so its rows get the anonymous owner '', which
-- is what its orders are; it reads and updates order_counts as before).
--
-- A short lock timeout: each ALTER needs a brief ACCESS EXCLUSIVE lock, and waiting behind a
-- long reader would queue every create behind it. Failing fast lets the migrate Job retry.
SET LOCAL lock_timeout = '3s';

-- Who asked for the order; reads are scoped to it. A constant default adds the column without
-- rewriting the table.
ALTER TABLE orders ADD COLUMN owner text NOT NULL DEFAULT '';

-- The owner's orders, oldest first: the list query's keyset range scan.
CREATE INDEX orders_owner_position_idx ON orders (owner, position);

-- order_counts.n stays the count of all orders (the previous release reads it as such).
-- `named` counts the orders of named callers among them, so the anonymous caller's count is
-- sum(n - named): still a sum of at most 64 rows. The previous release leaves it untouched,
-- rightly: it records only anonymous orders.
ALTER TABLE order_counts ADD COLUMN named bigint NOT NULL DEFAULT 0;

-- Each named caller's count, in a few slots per owner (as order_counts, so that one caller's
-- concurrent creates do not queue on one row); the primary key makes a caller's count an
-- index range scan over its few rows, however many orders or callers there are.
CREATE TABLE owner_order_counts (
    owner text     NOT NULL,
    slot  smallint NOT NULL,
    n     bigint   NOT NULL,
    PRIMARY KEY (owner, slot)
);

GRANT SELECT, INSERT, UPDATE ON owner_order_counts TO orders_service;
