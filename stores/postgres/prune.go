package postgres

import (
	"context"
	"fmt"
	"time"
)

// PruneTable names a table whose old rows the pruner deletes.
type PruneTable string

// The tables Pruner.Prune deletes from, and which of their rows.
const (
	// PruneOutbox: outbox rows sent to every destination before the cutoff. A row not yet
	// sent to one of them is never deleted, however old.
	PruneOutbox PruneTable = "outbox"
	// PruneAnalyticsSeen: the analytics consumer's records of events counted before the cutoff.
	PruneAnalyticsSeen PruneTable = "analytics_seen"
	// PruneRefreshTokens: refresh tokens spent, revoked or expired before the cutoff.
	PruneRefreshTokens PruneTable = "refresh_tokens"
	// PruneRefreshFamilies: sign-ins begun before the cutoff that have no token left.
	PruneRefreshFamilies PruneTable = "refresh_families"
)

// PruneTables are the tables Pruner.Prune knows, in the order a pruner visits them.
var PruneTables = []PruneTable{PruneOutbox, PruneAnalyticsSeen, PruneRefreshTokens, PruneRefreshFamilies}

// pruneStatements delete up to $2 rows older than $1, oldest first. SKIP LOCKED leaves rows
// another transaction holds (a pruner on another replica, a relay marking a row) to a later
// batch rather than waiting for them. Each walks an index in order and stops at the batch
// size: refresh_tokens_dead_at, refresh_families_created_at and analytics_seen_seen_at
// (migration 00007), and the
// outbox's primary key, along which the sent rows come first.
var pruneStatements = map[PruneTable]string{
	PruneOutbox: `DELETE FROM outbox WHERE id = ANY(ARRAY(
		SELECT id FROM outbox WHERE published_at < $1 AND streamed_at < $1
		ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED))`,
	PruneAnalyticsSeen: `DELETE FROM analytics_seen WHERE event_id = ANY(ARRAY(
		SELECT event_id FROM analytics_seen WHERE seen_at < $1
		ORDER BY seen_at LIMIT $2 FOR UPDATE SKIP LOCKED))`,
	PruneRefreshTokens: `DELETE FROM refresh_tokens WHERE token_hash = ANY(ARRAY(
		SELECT token_hash FROM refresh_tokens WHERE LEAST(expires_at, used_at, revoked_at) < $1
		ORDER BY LEAST(expires_at, used_at, revoked_at) LIMIT $2 FOR UPDATE SKIP LOCKED))`,
	PruneRefreshFamilies: `DELETE FROM refresh_families WHERE family_id = ANY(ARRAY(
		SELECT f.family_id FROM refresh_families f WHERE f.created_at < $1
		AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.family_id)
		ORDER BY f.created_at LIMIT $2 FOR UPDATE SKIP LOCKED))`,
}

// Pruner deletes rows past their retention, one shard and one small batch at a time, so
// that no statement holds many locks or writes much WAL at once.
type Pruner struct{ db *DB }

// NewPruner returns a pruner over db.
func NewPruner(db *DB) *Pruner { return &Pruner{db: db} }

// Shards returns the number of shards.
func (p *Pruner) Shards() int { return p.db.Shards() }

// Prune deletes up to limit rows of table on shard that went out of use before `before`
// (see the PruneTable constants), oldest first, and returns how many it deleted. A caller
// drains a backlog by calling it until it deletes fewer than limit.
func (p *Pruner) Prune(ctx context.Context, shard int, table PruneTable, before time.Time, limit int) (int, error) {
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
