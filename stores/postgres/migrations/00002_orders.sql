-- Flash sales live with their product (same bucket); orders live with their buyer. The
-- outbox sits beside the orders so that an order and its event commit together.

-- +goose Up
CREATE TABLE flash_sales (
    id               BIGINT PRIMARY KEY,
    bucket           SMALLINT NOT NULL,
    product_id       BIGINT NOT NULL REFERENCES products (id),
    sale_price_cents BIGINT NOT NULL CHECK (sale_price_cents >= 0),
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    per_user_limit   INTEGER NOT NULL CHECK (per_user_limit > 0),
    starts_at        TIMESTAMPTZ NOT NULL,
    ends_at          TIMESTAMPTZ NOT NULL CHECK (ends_at > starts_at),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX flash_sales_bucket ON flash_sales (bucket);
CREATE INDEX flash_sales_ends_at ON flash_sales (ends_at);

CREATE TABLE orders (
    id              BIGINT PRIMARY KEY,
    bucket          SMALLINT NOT NULL,
    user_id         BIGINT NOT NULL REFERENCES users (id),
    product_id      BIGINT NOT NULL,
    sale_id         BIGINT,
    quantity        INTEGER NOT NULL CHECK (quantity > 0),
    total_cents     BIGINT NOT NULL CHECK (total_cents >= 0),
    status          TEXT NOT NULL CHECK (status IN ('PENDING', 'PAID', 'CANCELLED', 'EXPIRED')),
    idempotency_key TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The last word on idempotency: even if Redis forgot a key, a second order cannot commit.
    CONSTRAINT orders_user_idempotency UNIQUE (user_id, idempotency_key)
);
CREATE INDEX orders_bucket ON orders (bucket);
CREATE INDEX orders_user ON orders (user_id, id DESC);
-- Rebuilding a pool reads the orders that hold its units.
CREATE INDEX orders_holding_sale ON orders (sale_id) WHERE status IN ('PENDING', 'PAID') AND sale_id IS NOT NULL;
CREATE INDEX orders_holding_product ON orders (product_id) WHERE status IN ('PENDING', 'PAID') AND sale_id IS NULL;
-- The expiry sweeper reads the oldest PENDING orders.
CREATE INDEX orders_pending_created ON orders (created_at) WHERE status = 'PENDING';

CREATE TABLE outbox (
    id            BIGSERIAL PRIMARY KEY,
    event_id      UUID NOT NULL UNIQUE,
    event_type    TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    priority      SMALLINT NOT NULL DEFAULT 0,
    payload       JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Each destination has its own mark, so an outage of one never holds back the other.
    published_at  TIMESTAMPTZ,
    streamed_at   TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_unstreamed ON outbox (id) WHERE streamed_at IS NULL;

-- +goose Down
DROP TABLE outbox;
DROP TABLE orders;
DROP TABLE flash_sales;
