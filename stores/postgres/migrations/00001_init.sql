-- Every shard holds the same tables; which rows a shard holds is decided by their bucket.
-- Each row keeps its bucket so that moving a bucket to another shard is one
-- `WHERE bucket = $1` per table (see the README's resharding procedure).

-- +goose Up
CREATE TABLE shard_buckets (
    bucket SMALLINT PRIMARY KEY CHECK (bucket BETWEEN 0 AND 1023),
    shard  SMALLINT NOT NULL CHECK (shard >= 0)
);
COMMENT ON TABLE shard_buckets IS 'Which shard owns each bucket. Only shard 0''s copy is authoritative.';

CREATE TABLE users (
    id            BIGINT PRIMARY KEY,
    bucket        SMALLINT NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('CUSTOMER', 'ADMIN')),
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX users_bucket ON users (bucket);

CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY,
    bucket     SMALLINT NOT NULL,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id  UUID NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_bucket ON refresh_tokens (bucket);

CREATE TABLE products (
    id          BIGINT PRIMARY KEY,
    bucket      SMALLINT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    stock       INTEGER NOT NULL CHECK (stock >= 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX products_bucket ON products (bucket);

-- +goose Down
DROP TABLE products;
DROP TABLE refresh_tokens;
DROP TABLE users;
DROP TABLE shard_buckets;
