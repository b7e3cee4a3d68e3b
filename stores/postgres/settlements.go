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
