package checkout

import (
	"context"

	"github.com/flashsale/flashsale"
)

// Cancel cancels a PENDING or PAID order for its owner or an admin and gives its units back.
// NOT_FOUND (also for someone else's order, so ids cannot be probed), CONFLICT (already
// cancelled or expired).
//
// A paid order is refunded after the answer, not during it: the cancel's order.cancelled
// event, written with the move, reaches the payment worker through the outbox and RabbitMQ,
// which refunds the charge once and records it on the order (Settle). So the refund survives
// any crash, and cancelling never waits on the payment gateway.
func (s *Service) Cancel(ctx context.Context, v flashsale.Viewer, id flashsale.OrderID) (*flashsale.Order, error) {
	o, err := s.orders.FindOrderByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if o.UserID != v.UserID && v.Role != flashsale.RoleAdmin {
		return nil, flashsale.Errorf(flashsale.ENOTFOUND, "order not found")
	}
	return s.Transition(ctx, id, []flashsale.OrderStatus{flashsale.OrderPending, flashsale.OrderPaid}, flashsale.OrderCancelled)
}

// Transition moves an order between statuses (only from one of `from`) and, when the new
// status no longer holds stock, gives the units back. The status change is the single point
// of decision: of two racing moves exactly one succeeds, so units go back exactly once; if
// the release itself fails, reconciliation finds the hold of an order that no longer holds
// stock and releases it. CONFLICT, NOT_FOUND.
func (s *Service) Transition(ctx context.Context, id flashsale.OrderID, from []flashsale.OrderStatus, to flashsale.OrderStatus) (*flashsale.Order, error) {
	o, err := s.orders.TransitionOrder(ctx, id, from, to)
	if err != nil {
		return nil, err
	}
	if !to.HoldsStock() {
		s.release(context.WithoutCancel(ctx), o.Pool(), o.ID)
	}
	s.announce(ctx, o)
	return o, nil
}

// Settle records how the payment of a cancelled or expired order ended (refunded, or never
// charged), once per order, and tells subscribed buyers of a refund. It reports whether this
// call recorded it. CONFLICT (the order still holds stock), NOT_FOUND.
func (s *Service) Settle(ctx context.Context, id flashsale.OrderID, refunded bool) (*flashsale.Order, bool, error) {
	o, settled, err := s.orders.SettleOrder(ctx, id, refunded)
	if err != nil {
		return nil, false, err
	}
	if settled && refunded {
		s.announce(ctx, o)
	}
	return o, settled, nil
}

// RequestSettlements asks the payment worker again, through the outbox, to settle the
// cancelled and expired orders still unsettled SettleGrace after they ended: their first
// request can have been dead-lettered after a long outage of the gateway, and an order
// charged for nothing must still be refunded. It returns how many it asked for, up to limit
// per shard.
func (s *Service) RequestSettlements(ctx context.Context, limit int) (int, error) {
	return s.orders.RequestSettlements(ctx, s.now().Add(-s.cfg.SettleGrace), limit)
}

// ExpireStale expires PENDING orders older than the reservation TTL, up to limit of them,
// and returns how many it expired. A charge of an expired order that was in flight is
// refunded by the payment worker, which settles every expired order from its event.
func (s *Service) ExpireStale(ctx context.Context, limit int) (int, error) {
	stale, err := s.orders.StalePending(ctx, s.now().Add(-s.cfg.ReservationTTL), limit)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range stale {
		_, err := s.Transition(ctx, o.ID, []flashsale.OrderStatus{flashsale.OrderPending}, flashsale.OrderExpired)
		switch flashsale.ErrorCode(err) {
		case "":
			n++
		case flashsale.ECONFLICT: // paid or cancelled meanwhile
		default:
			return n, err
		}
	}
	return n, nil
}
