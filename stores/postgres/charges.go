package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/combine"
)

// ChargeLedger is the mock payment gateway's record of charges and refunds, at most one of
// each per order, on the buyer's shard. A charge row is also how an order's payment is voided:
// a VOIDED row refuses any charge asked for later.
type ChargeLedger struct {
	db      *DB
	records *combine.Combiner[charge, storedCharge]
}

type charge struct {
	order       flashsale.OrderID
	amountCents int
	outcome     string
}

type storedCharge struct {
	outcome string
	stored  bool // by this call
}

// NewChargeLedger returns the ledger over db.
func NewChargeLedger(db *DB) *ChargeLedger {
	l := &ChargeLedger{db: db}
	l.records = combine.New(db.Shards(), orderBatchRows, orderWriters, l.recordCharges, isRowError)
	return l
}

// RecordCharge stores the outcome of charging an order unless one is stored already, and
// returns the stored outcome and whether this call stored it. Concurrent calls for one order
// agree on one outcome: the primary key admits one row. Concurrent calls on a shard share
// statements (see internal/combine).
func (l *ChargeLedger) RecordCharge(ctx context.Context, order flashsale.OrderID, amountCents int, outcome string) (string, bool, error) {
	c, err := l.records.Do(ctx, l.db.ShardOf(order.Bucket()), charge{order: order, amountCents: amountCents, outcome: outcome})
	if err != nil {
		return "", false, fmt.Errorf("record charge of order %d: %w", order, err)
	}
	return c.outcome, c.stored, nil
}

// recordCharges inserts the charges no row exists for, then reads the stored outcome of the
// others (stored before, or by an earlier item of the same batch).
func (l *ChargeLedger) recordCharges(ctx context.Context, shard int, charges []charge) ([]combine.Outcome[storedCharge], error) {
	n := len(charges)
	orders, amounts := make([]int64, n), make([]int64, n)
	buckets := make([]int32, n)
	outcomes := make([]string, n)
	for i, c := range charges {
		orders[i], amounts[i], buckets[i], outcomes[i] = int64(c.order), int64(c.amountCents), int32(c.order.Bucket()), c.outcome
	}
	pool := l.db.pools[shard]
	mine, err := returnedSet[int64](pool.Query(ctx,
		`INSERT INTO charges (order_id, bucket, amount_cents, outcome)
		 SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::bigint[], $4::text[])
		 ON CONFLICT (order_id) DO NOTHING RETURNING order_id`,
		orders, buckets, amounts, outcomes))
	if err != nil {
		return nil, err
	}
	outs := make([]combine.Outcome[storedCharge], n)
	var others []int64
	for i, c := range charges {
		if mine[orders[i]] {
			outs[i].Val = storedCharge{outcome: c.outcome, stored: true}
			delete(mine, orders[i]) // a second item for the same order stored nothing
		} else {
			others = append(others, orders[i])
		}
	}
	if len(others) == 0 {
		return outs, nil
	}
	rows, err := pool.Query(ctx, `SELECT order_id, outcome FROM charges WHERE order_id = ANY($1)`, others)
	if err != nil {
		return nil, err
	}
	stored := map[int64]string{}
	var id int64
	var out string
	if _, err := pgx.ForEachRow(rows, []any{&id, &out}, func() error { stored[id] = out; return nil }); err != nil {
		return nil, err
	}
	for i := range charges {
		if outs[i].Val.stored {
			continue
		}
		if out, ok := stored[orders[i]]; ok {
			outs[i].Val = storedCharge{outcome: out}
		} else {
			outs[i].Err = errors.New("charge neither stored nor found")
		}
	}
	return outs, nil
}

// CountCharges returns how many charges the ledger holds, across shards, voids left out
// (tests count them).
func (l *ChargeLedger) CountCharges(ctx context.Context) (int, error) {
	counts, err := scatter(ctx, l.db, l.db.allShards(), func(ctx context.Context, shard int) (int, error) {
		var n int
		err := l.db.pools[shard].QueryRow(ctx, `SELECT count(*) FROM charges WHERE outcome <> 'VOIDED'`).Scan(&n)
		return n, err
	})
	total := 0
	for _, c := range counts {
		total += c
	}
	return total, err
}

// RecordRefund refunds an order's approved charge, once: it reports created=true when this
// call stored the refund, and false, storing nothing, when the order was refunded before.
// CONFLICT when the order has no approved charge; BAD_USER_INPUT when amountCents is more than
// was charged. The primary key of refunds admits one row per order, so of concurrent calls
// exactly one creates it.
func (l *ChargeLedger) RecordRefund(ctx context.Context, order flashsale.OrderID, amountCents int) (bool, error) {
	pool := l.db.poolFor(order.Bucket())
	tag, err := pool.Exec(ctx,
		`INSERT INTO refunds (order_id, bucket, amount_cents)
		 SELECT order_id, bucket, $2 FROM charges WHERE order_id = $1 AND outcome = 'APPROVED' AND amount_cents >= $2
		 ON CONFLICT (order_id) DO NOTHING`, order, amountCents)
	if err != nil {
		return false, fmt.Errorf("record refund of order %d: %w", order, err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	// Nothing stored: say why, in a statement of its own whose snapshot shows a refund that a
	// concurrent call committed while the insert waited for it.
	var outcome *string
	var charged *int64
	var refunded bool
	err = pool.QueryRow(ctx,
		`SELECT c.outcome, c.amount_cents, EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = $1)
		 FROM (SELECT 1) one LEFT JOIN charges c ON c.order_id = $1`, order).Scan(&outcome, &charged, &refunded)
	switch {
	case err != nil:
		return false, fmt.Errorf("record refund of order %d: %w", order, err)
	case refunded:
		return false, nil
	case outcome == nil || *outcome != "APPROVED":
		return false, flashsale.Errorf(flashsale.ECONFLICT, "order %s has no approved charge to refund", order)
	}
	return false, flashsale.Errorf(flashsale.EINVALID, "a refund of %d cents is more than the %d charged", amountCents, *charged)
}

// CountRefunds returns how many refunds the ledger holds, across shards (tests count them).
func (l *ChargeLedger) CountRefunds(ctx context.Context) (int, error) {
	counts, err := scatter(ctx, l.db, l.db.allShards(), func(ctx context.Context, shard int) (int, error) {
		var n int
		err := l.db.pools[shard].QueryRow(ctx, `SELECT count(*) FROM refunds`).Scan(&n)
		return n, err
	})
	total := 0
	for _, c := range counts {
		total += c
	}
	return total, err
}
