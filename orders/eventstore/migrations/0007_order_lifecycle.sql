-- Orders have a life after their creation (paid, shipped, delivered, cancelled): each is an
-- event at the next version of the order's stream, and the read model shows where the order
-- stands. Expand only: the previous release keeps running against this schema while it rolls
-- out. Its inserts name neither column, so its rows get version 1 and no change time, which is
-- what a new order has; it never reads them.
--
-- Each ALTER needs a brief ACCESS EXCLUSIVE lock on orders; a constant default adds the column
-- without rewriting the table. The short lock_timeout keeps the Job from queueing every create
-- behind a long reader (it fails and retries).
SET LOCAL lock_timeout = '3s';

-- The version of the order's stream that the row reflects: the order's strong ETag, and what
-- keeps the projection monotonic (a row only ever moves to a higher version).
ALTER TABLE orders ADD COLUMN version integer NOT NULL DEFAULT 1;

-- When the order last changed (its latest event's own time); NULL: never since its creation.
ALTER TABLE orders ADD COLUMN updated_at timestamptz;

-- The previous release's async projector reads events of types it does not know and moves its
-- checkpoint ('orders') past them. So this release's projector keeps a checkpoint of its own,
-- 'orders_lifecycle', which only it moves, starting where the previous one stands now. No
-- lifecycle event exists yet at this point (only code that needs this migration writes them),
-- so nothing before that position is missing from the read model, and whatever the previous
-- projector skips after it, this release's projector applies.
INSERT INTO projection_checkpoints (projection, tx_id, position, updated_at)
SELECT 'orders_lifecycle', tx_id, position, now()
FROM projection_checkpoints WHERE projection = 'orders'
ON CONFLICT (projection) DO NOTHING;
