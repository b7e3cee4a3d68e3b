-- The ledger's reservations are pruned after a retention (workers/pruner). A pool remembers
-- the highest number pruned, and a record at or below it is refused as from a stale copy,
-- as a record of a number still kept is by the primary key.

-- +goose Up
ALTER TABLE pool_generations ADD COLUMN pruned_through BIGINT NOT NULL DEFAULT 0;
-- BRIN: the pruner finds old rows without a B-tree that every record would have to update.
CREATE INDEX pool_reservations_created_at ON pool_reservations USING brin (created_at);

-- +goose Down
DROP INDEX pool_reservations_created_at;
ALTER TABLE pool_generations DROP COLUMN pruned_through;
