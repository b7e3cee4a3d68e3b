package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale"
)

// SettleOrder records how the payment of a cancelled or expired order ended and writes its
// order.settled event in the same transaction. settled_at is set only where it is null, so
// of any number of calls for one order (a redelivered event, the payment worker's two paths
// to a refund) exactly one writes, and the event exists exactly once. The order's updated_at
// moves only with a refund, the one change a buyer sees. CONFLICT, NOT_FOUND.
func (s *OrderStore) SettleOrder(ctx context.Context, id flashsale.OrderID, refunded bool) (*flashsale.Order, bool, error) {
	var o *flashsale.Order
	settled := false
	err := pgx.BeginFunc(ctx, s.db.poolFor(id.Bucket()), func(tx pgx.Tx) error {
		var at time.Time
		var err error
		o, err = scanOrderWith(tx.QueryRow(ctx,
			`UPDATE orders SET settled_at = now(),
			   refunded_at = CASE WHEN $2 THEN now() END,
			   updated_at = CASE WHEN $2 THEN now() ELSE updated_at END
			 WHERE id = $1 AND settled_at IS NULL AND status IN ('CANCELLED', 'EXPIRED')
			 RETURNING `+orderColumns+`, settled_at`, id, refunded), &at)
		if err == nil {
			settled = true
			e := flashsale.NewOrderEvent(flashsale.EventOrderSettled, o)
			e.Refunded, e.At = refunded, at
			return insertEvents(ctx, tx, []flashsale.OrderEvent{e})
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		o, err = scanOrder(tx.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE id = $1`, id))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return flashsale.Errorf(flashsale.ENOTFOUND, "order not found")
		case err != nil:
			return err
		case o.Status.HoldsStock():
			return flashsale.Errorf(flashsale.ECONFLICT, "order is %s, not CANCELLED or EXPIRED", o.Status)
		}
		return nil // settled before
	})
	if err != nil {
		if flashsale.ErrorCode(err) != flashsale.EINTERNAL {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("settle order %d: %w", id, err)
	}
	return o, settled, nil
}

// RequestSettlements asks again, through the outbox, for the settlements that are overdue.
// Each shard marks its orders and writes their events in one transaction; SKIP LOCKED lets
// sweepers of several replicas share the work instead of queueing on each other's rows.
func (s *OrderStore) RequestSettlements(ctx context.Context, before time.Time, limit int) (int, error) {
	counts, err := scatter(ctx, s.db, s.db.allShards(), func(ctx context.Context, shard int) (int, error) {
		n := 0
		err := pgx.BeginFunc(ctx, s.db.pools[shard], func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx,
				`WITH due AS (
				   SELECT id FROM orders
				   WHERE settled_at IS NULL AND status IN ('CANCELLED', 'EXPIRED') AND updated_at < $1
				     AND (settle_requested_at IS NULL OR settle_requested_at < $1)
				   ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED
				 )
				 UPDATE orders o SET settle_requested_at = now() FROM due WHERE o.id = due.id
				 RETURNING o.id, o.user_id, o.product_id, coalesce(o.sale_id, 0), o.quantity, o.total_cents, o.status,
				           o.idempotency_key, o.created_at, o.updated_at, o.refunded_at`, before, limit)
			if err != nil {
				return err
			}
			due, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*flashsale.Order, error) { return scanOrder(r) })
			if err != nil {
				return err
			}
			events := make([]flashsale.OrderEvent, len(due))
			for i, o := range due {
				events[i] = flashsale.NewOrderEvent(flashsale.EventOrderSettlementDue, o)
			}
			n = len(due)
			return insertEvents(ctx, tx, events)
		})
		return n, err
	})
	total := 0
	for _, c := range counts {
		total += c
	}
	if err != nil {
		return total, fmt.Errorf("request overdue settlements: %w", err)
	}
	return total, nil
}
