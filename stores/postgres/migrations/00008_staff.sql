-- What shop staff need to run a sale: a flash sale can be cancelled, a product retired, and
-- a sale's orders are listed by status, newest first. The index is built CONCURRENTLY so
-- that adding it to a live shard does not block the orders being written; the columns are
-- nullable without a default, which PostgreSQL adds without rewriting the table.

-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE flash_sales ADD COLUMN IF NOT EXISTS cancelled_at TIMESTAMPTZ;
ALTER TABLE products ADD COLUMN IF NOT EXISTS retired_at TIMESTAMPTZ;
-- A sale's orders, walked in id (age) order; a status filter reads along it.
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_sale ON orders (sale_id, id) WHERE sale_id IS NOT NULL;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS orders_sale;
ALTER TABLE products DROP COLUMN IF EXISTS retired_at;
ALTER TABLE flash_sales DROP COLUMN IF EXISTS cancelled_at;
