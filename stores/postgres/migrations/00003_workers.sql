-- Tables of the workers. Each lives on the shard of the row it is about: charges and
-- notifications with the buyer (their order's bucket), sale statistics with the sale.

-- +goose Up
-- The mock payment gateway's ledger: one charge per order, ever. A real gateway keeps this
-- on its side, keyed by the idempotency key we send (the order id).
CREATE TABLE charges (
    order_id     BIGINT PRIMARY KEY,
    bucket       SMALLINT NOT NULL,
    amount_cents BIGINT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('APPROVED', 'DECLINED')),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX charges_bucket ON charges (bucket);

CREATE TABLE notifications (
    id           BIGINT PRIMARY KEY,
    bucket       SMALLINT NOT NULL,
    user_id      BIGINT NOT NULL REFERENCES users (id),
    event_id     UUID NOT NULL UNIQUE, -- a redelivered event notifies once
    order_id     BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at TIMESTAMPTZ
);
CREATE INDEX notifications_bucket ON notifications (bucket);
CREATE INDEX notifications_user ON notifications (user_id, id DESC);

-- Events already counted by analytics; counting and remembering commit together.
CREATE TABLE analytics_seen (
    event_id UUID PRIMARY KEY,
    bucket   SMALLINT NOT NULL,
    seen_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX analytics_seen_bucket ON analytics_seen (bucket);

CREATE TABLE sale_stats (
    sale_id       BIGINT NOT NULL,
    bucket        SMALLINT NOT NULL,
    minute        TIMESTAMPTZ NOT NULL,
    orders        INTEGER NOT NULL DEFAULT 0,
    units         INTEGER NOT NULL DEFAULT 0,
    revenue_cents BIGINT NOT NULL DEFAULT 0,
    paid_orders   INTEGER NOT NULL DEFAULT 0,
    cancelled     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sale_id, minute)
);
CREATE INDEX sale_stats_bucket ON sale_stats (bucket);

-- +goose Down
DROP TABLE sale_stats;
DROP TABLE analytics_seen;
DROP TABLE notifications;
DROP TABLE charges;
