-- The read model built by projections/orders.py. Nothing but projections writes here.
CREATE TABLE orders (
    order_id    uuid        PRIMARY KEY,
    request_id  text        NOT NULL,
    status      text        NOT NULL,
    products    jsonb       NOT NULL,
    shipping_to text        NOT NULL,
    total       bigint      NOT NULL,
    created_at  timestamptz NOT NULL,
    -- The event's global position: a stable, unique key for keyset pagination.
    position    bigint      NOT NULL UNIQUE
);

-- The order count, kept in slots so that concurrent creates add to different rows instead of
-- queueing on one hot row; the count is the sum of at most 64 rows, whatever the table size.
CREATE TABLE order_counts (
    slot  smallint PRIMARY KEY,
    n     bigint   NOT NULL
);

-- Where each asynchronous projection has got to in read_all order (tx_id, position).
CREATE TABLE projection_checkpoints (
    projection text        PRIMARY KEY,
    tx_id      xid8        NOT NULL,
    position   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
