-- PostgreSQL's record of the stock pools kept in Redis, on the shard of the pool's sale or
-- product: the pool's generation, and every reservation it granted, recorded before the
-- order is written. See package checkout for how they keep a lost or stale pool from selling.

-- +goose Up
CREATE TABLE pool_generations (
    pool       TEXT PRIMARY KEY,
    bucket     SMALLINT NOT NULL,
    generation BIGINT NOT NULL CHECK (generation > 0)
);
CREATE INDEX pool_generations_bucket ON pool_generations (bucket);

CREATE TABLE pool_reservations (
    pool            TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    bucket          SMALLINT NOT NULL,
    generation      BIGINT NOT NULL,
    order_id        BIGINT NOT NULL,
    user_id         BIGINT NOT NULL,
    quantity        INTEGER NOT NULL CHECK (quantity > 0),
    idempotency_key TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A sequence number is granted once: a second order under it came from an older copy.
    PRIMARY KEY (pool, seq)
);
CREATE INDEX pool_reservations_bucket ON pool_reservations (bucket);
-- A rebuild reads the pool's recent reservations through the primary key: rebuilds are rare,
-- and every record would pay for an index of its own.

-- +goose Down
DROP TABLE pool_reservations;
DROP TABLE pool_generations;
