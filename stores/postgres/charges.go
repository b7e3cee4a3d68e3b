package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale"
)

// ChargeLedger is the mock payment gateway's record of charges, one per order, on the buyer's
// shard.
type ChargeLedger struct{ db *DB }

// NewChargeLedger returns the ledger over db.
func NewChargeLedger(db *DB) *ChargeLedger { return &ChargeLedger{db: db} }

// RecordCharge stores the outcome of charging an order unless one is stored already, and
// returns the stored outcome and whether this call stored it. Concurrent calls for one order
// agree on one outcome: the primary key admits one row.
func (l *ChargeLedger) RecordCharge(ctx context.Context, order flashsale.OrderID, amountCents int, outcome string) (string, bool, error) {
	pool := l.db.poolFor(order.Bucket())
	var stored string
	err := pool.QueryRow(ctx,
		`INSERT INTO charges (order_id, bucket, amount_cents, outcome) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (order_id) DO NOTHING RETURNING outcome`,
		order, order.Bucket(), amountCents, outcome).Scan(&stored)
	if err == nil {
		return stored, true, nil
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return "", false, fmt.Errorf("record charge of order %d: %w", order, err)
	}
	if err := pool.QueryRow(ctx, `SELECT outcome FROM charges WHERE order_id = $1`, order).Scan(&stored); err != nil {
		return "", false, fmt.Errorf("read charge of order %d: %w", order, err)
	}
	return stored, false, nil
}

// CountCharges returns how many charges the ledger holds, across shards (tests count them).
func (l *ChargeLedger) CountCharges(ctx context.Context) (int, error) {
	counts, err := scatter(ctx, l.db, l.db.allShards(), func(ctx context.Context, shard int) (int, error) {
		var n int
		err := l.db.pools[shard].QueryRow(ctx, `SELECT count(*) FROM charges`).Scan(&n)
		return n, err
	})
	total := 0
	for _, c := range counts {
		total += c
	}
	return total, err
}
