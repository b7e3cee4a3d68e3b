package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/flashsale/flashsale"
)

// pruneStatements delete up to $2 rows older than $1. SKIP LOCKED leaves rows another
// transaction holds (a pruner on another replica, a relay marking a row) to a later batch
// rather than waiting for them. Each walks an index and stops at the batch size:
// refresh_tokens_dead_at, refresh_families_created_at and analytics_seen_seen_at (migration
// 00007) and the outbox's primary key, oldest first; the ledger's BRIN index on created_at
// (00011), in no particular order.
var pruneStatements = map[flashsale.PruneTable]string{
	flashsale.PruneOutbox: `DELETE FROM outbox WHERE id = ANY(ARRAY(
		SELECT id FROM outbox WHERE published_at < $1 AND streamed_at < $1
		ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED))`,
	flashsale.PruneAnalyticsSeen: `DELETE FROM analytics_seen WHERE event_id = ANY(ARRAY(
		SELECT event_id FROM analytics_seen WHERE seen_at < $1
		ORDER BY seen_at LIMIT $2 FOR UPDATE SKIP LOCKED))`,
	flashsale.PruneRefreshTokens: `DELETE FROM refresh_tokens WHERE token_hash = ANY(ARRAY(
		SELECT token_hash FROM refresh_tokens WHERE LEAST(expires_at, used_at, revoked_at) < $1
		ORDER BY LEAST(expires_at, used_at, revoked_at) LIMIT $2 FOR UPDATE SKIP LOCKED))`,
	flashsale.PruneRefreshFamilies: `DELETE FROM refresh_families WHERE family_id = ANY(ARRAY(
		SELECT f.family_id FROM refresh_families f WHERE f.created_at < $1
		AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.family_id)
		ORDER BY f.created_at LIMIT $2 FOR UPDATE SKIP LOCKED))`,
	// The pool's mark is raised in the same statement, so no moment sees a row gone and its
	// number not yet refused. A pool's highest row is kept: a rebuild numbers on from it.
	flashsale.PruneReservations: `WITH doomed AS (
		SELECT r.pool, r.seq FROM pool_reservations r
		WHERE r.created_at < $1 AND r.seq < (SELECT max(m.seq) FROM pool_reservations m WHERE m.pool = r.pool)
		LIMIT $2 FOR UPDATE SKIP LOCKED
	), marked AS (
		UPDATE pool_generations g SET pruned_through = greatest(g.pruned_through, d.seq)
		FROM (SELECT pool, max(seq) AS seq FROM doomed GROUP BY pool) d WHERE g.pool = d.pool
	)
	DELETE FROM pool_reservations r USING doomed d WHERE r.pool = d.pool AND r.seq = d.seq`,
}

// Pruner deletes rows past their retention, one shard and one small batch at a time, so
// that no statement holds many locks or writes much WAL at once.
type Pruner struct{ db *DB }

// NewPruner returns a pruner over db.
func NewPruner(db *DB) *Pruner { return &Pruner{db: db} }

// Shards returns the number of shards.
func (p *Pruner) Shards() int { return p.db.Shards() }

// Prune deletes up to limit rows of table on shard that went out of use before `before`
// (see flashsale.PruneTable), oldest first, and returns how many it deleted. A caller
// drains a backlog by calling it until it deletes fewer than limit.
func (p *Pruner) Prune(ctx context.Context, shard int, table flashsale.PruneTable, before time.Time, limit int) (int, error) {
	stmt, ok := pruneStatements[table]
	if !ok {
		return 0, fmt.Errorf("prune: unknown table %q", table)
	}
	tag, err := p.db.pools[shard].Exec(ctx, stmt, before, limit)
	if err != nil {
		return 0, fmt.Errorf("prune %s of shard %d: %w", table, shard, err)
	}
	return int(tag.RowsAffected()), nil
}
