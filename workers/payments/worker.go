package payments

import (
	"context"
	"log/slog"

	"github.com/flashsale/flashsale"
)

// Orders is what the worker reads and moves.
type Orders interface {
	FindOrderByID(ctx context.Context, id flashsale.OrderID) (*flashsale.Order, error)
}

// Checkout moves orders, giving units back when an order stops holding them.
type Checkout interface {
	Transition(ctx context.Context, id flashsale.OrderID, from []flashsale.OrderStatus, to flashsale.OrderStatus) (*flashsale.Order, error)
}

// Worker handles order events for payment.
type Worker struct {
	gateway  *Gateway
	orders   Orders
	checkout Checkout
	log      *slog.Logger
}

// NewWorker returns a worker.
func NewWorker(g *Gateway, orders Orders, c Checkout, log *slog.Logger) *Worker {
	return &Worker{gateway: g, orders: orders, checkout: c, log: log}
}

var pending = []flashsale.OrderStatus{flashsale.OrderPending}

// Handle charges the order of an order.placed event. It returns an error only for what a
// retry may fix (a gateway timeout, a database outage); the message is then retried with a
// growing delay and dead-lettered in the end, leaving the order to expire.
func (w *Worker) Handle(ctx context.Context, e flashsale.OrderEvent) error {
	if e.Type != flashsale.EventOrderPlaced {
		return nil
	}
	o, err := w.orders.FindOrderByID(ctx, e.OrderID)
	if flashsale.ErrorCode(err) == flashsale.ENOTFOUND {
		w.log.WarnContext(ctx, "order of a placed event does not exist", "order", e.OrderID.String())
		return nil
	} else if err != nil {
		return err
	}
	if o.Status != flashsale.OrderPending {
		return nil // paid by an earlier delivery, or cancelled or expired: nothing to charge
	}
	outcome, err := w.gateway.Charge(ctx, o.ID, o.TotalCents)
	if err != nil {
		return err
	}
	to := flashsale.OrderPaid
	if outcome == Declined {
		to = flashsale.OrderCancelled
	}
	_, err = w.checkout.Transition(ctx, o.ID, pending, to)
	switch flashsale.ErrorCode(err) {
	case "":
		return nil
	case flashsale.ECONFLICT:
		if outcome == Approved {
			// Cancelled or expired while the charge was in flight: a real shop refunds here.
			w.log.WarnContext(ctx, "charged an order that is no longer pending; refund it", "order", o.ID.String())
		}
		return nil
	}
	return err
}
