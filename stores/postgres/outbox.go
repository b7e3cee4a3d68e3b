package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale"
)

// sentColumn is the outbox's column that marks a row sent to dest.
func sentColumn(dest flashsale.OutboxDestination) (string, error) {
	switch dest {
	case flashsale.ToRabbitMQ:
		return "published_at", nil
	case flashsale.ToKafka:
		return "streamed_at", nil
	}
	return "", fmt.Errorf("outbox: unknown destination %q", dest)
}

// Outbox reads and marks the outbox tables of every shard.
type Outbox struct{ db *DB }

// NewOutbox returns the outbox over db.
func NewOutbox(db *DB) *Outbox { return &Outbox{db: db} }

// Shards returns the number of shards, each with its own outbox.
func (o *Outbox) Shards() int { return o.db.Shards() }

// Relay claims up to limit unsent rows of a shard for dest (FOR UPDATE SKIP LOCKED, so relay
// replicas share the work instead of sending the same rows), calls send with them and marks
// them sent in the same transaction only if send succeeded. If send fails, or the process
// dies before the commit, the rows stay unsent and are sent again: at least once, never lost.
//
// ctx bounds the whole transaction, send included: a caller gives it a deadline so that a
// stuck broker cannot keep the rows locked. The rollback after a failure has a moment of its
// own, so that a claim cut short by its deadline still ends cleanly on the server.
func (o *Outbox) Relay(ctx context.Context, shard int, dest flashsale.OutboxDestination, limit int, send func(context.Context, []flashsale.OutboxEvent) error) (n int, err error) {
	column, err := sentColumn(dest)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			n, err = 0, fmt.Errorf("relay outbox of shard %d to %s: %w", shard, dest, err)
		}
	}()
	tx, err := o.db.pools[shard].Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			rbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
			defer cancel()
			tx.Rollback(rbCtx) // a connection that cannot roll back is closed, which also ends the transaction
		}
	}()
	rows, err := tx.Query(ctx,
		`SELECT id, event_id::text, event_type, partition_key, priority, payload, trace_parent FROM outbox
		 WHERE `+column+` IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
	if err != nil {
		return 0, err
	}
	batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (flashsale.OutboxEvent, error) {
		var row flashsale.OutboxEvent
		err := r.Scan(&row.ID, &row.EventID, &row.Type, &row.Key, &row.Priority, &row.Payload, &row.TraceParent)
		return row, err
	})
	if err != nil {
		return 0, err
	}
	if len(batch) > 0 {
		if err := send(ctx, batch); err != nil {
			return 0, err
		}
		ids := make([]int64, len(batch))
		for i, r := range batch {
			ids[i] = r.ID
		}
		if _, err := tx.Exec(ctx, `UPDATE outbox SET `+column+` = now() WHERE id = ANY($1)`, ids); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	return len(batch), nil
}

// rollbackTimeout bounds rolling back a failed claim, whose own context may have ended.
const rollbackTimeout = 5 * time.Second

// Pending reports whether shard has rows not yet sent to dest. It is one statement on the
// partial index, where a claim (Relay) takes three even when it finds nothing: a relay that
// polls an empty outbox several times a second looks with this first.
func (o *Outbox) Pending(ctx context.Context, shard int, dest flashsale.OutboxDestination) (bool, error) {
	column, err := sentColumn(dest)
	if err != nil {
		return false, err
	}
	var pending bool
	err = o.db.pools[shard].QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM outbox WHERE `+column+` IS NULL)`).Scan(&pending)
	if err != nil {
		return false, fmt.Errorf("look for outbox rows of shard %d to %s: %w", shard, dest, err)
	}
	return pending, nil
}

// Backlog returns the number of rows not yet sent to dest on every shard.
func (o *Outbox) Backlog(ctx context.Context, dest flashsale.OutboxDestination) (int, error) {
	column, err := sentColumn(dest)
	if err != nil {
		return 0, err
	}
	counts, err := scatter(ctx, o.db, o.db.allShards(), func(ctx context.Context, shard int) (int, error) {
		var n int
		err := o.db.pools[shard].QueryRow(ctx, `SELECT count(*) FROM outbox WHERE `+column+` IS NULL`).Scan(&n)
		return n, err
	})
	total := 0
	for _, c := range counts {
		total += c
	}
	return total, err
}

// OutboxStats is what one shard's outbox holds for one destination.
type OutboxStats struct {
	// Unsent is the number of rows not yet sent.
	Unsent int
	// Oldest is how long the oldest of them has waited (zero when none).
	Oldest time.Duration
}

// Stats reads shard's rows not yet sent to dest, along the destination's partial index: few,
// unless a broker is out, when they are what an operator wants to know about.
func (o *Outbox) Stats(ctx context.Context, shard int, dest flashsale.OutboxDestination) (OutboxStats, error) {
	column, err := sentColumn(dest)
	if err != nil {
		return OutboxStats{}, err
	}
	var st OutboxStats
	var oldest float64
	err = o.db.pools[shard].QueryRow(ctx,
		`SELECT count(*), COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(created_at)), 0)::float8
		 FROM outbox WHERE `+column+` IS NULL`).Scan(&st.Unsent, &oldest)
	if err != nil {
		return OutboxStats{}, fmt.Errorf("read outbox stats of shard %d to %s: %w", shard, dest, err)
	}
	st.Oldest = time.Duration(max(0, oldest) * float64(time.Second))
	return st, nil
}
