-- Indexes the pruner (workers/pruner) reads, oldest first, to delete rows past their
-- retention in small batches without scanning whole tables. The outbox needs none: its sent
-- rows are its oldest, found along the primary key. Built CONCURRENTLY, so that adding them
-- to a live shard does not block its writes.

-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY IF NOT EXISTS analytics_seen_seen_at ON analytics_seen (seen_at);
-- When a token stopped being usable: spent, revoked or expired, whichever came first
-- (LEAST ignores NULLs).
CREATE INDEX CONCURRENTLY IF NOT EXISTS refresh_tokens_dead_at ON refresh_tokens ((LEAST(expires_at, used_at, revoked_at)));
CREATE INDEX CONCURRENTLY IF NOT EXISTS refresh_families_created_at ON refresh_families (created_at);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS refresh_families_created_at;
DROP INDEX CONCURRENTLY IF EXISTS refresh_tokens_dead_at;
DROP INDEX CONCURRENTLY IF EXISTS analytics_seen_seen_at;
