// Package notifications tells buyers what happened to their orders: it consumes order events,
// renders a message, stores it on the buyer's shard (once per event) and delivers it through
// a sink — the log by default, a signed webhook when one is configured.
//
// An order that ends (cancelled or expired) is told of once its payment is settled, from
// order.settled, not from order.cancelled or order.expired: only then is it known whether
// the buyer was charged, and so refunded. Until the payment worker has voided the order's
// payment, a charge may still be landing.
package notifications

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/flashsale/flashsale"
)

// Store keeps notifications.
type Store interface {
	SaveNotification(ctx context.Context, n *flashsale.Notification) (*flashsale.Notification, error)
	MarkDelivered(ctx context.Context, user flashsale.UserID, id int64, at time.Time) error
}

// Sink delivers a notification to the buyer.
type Sink interface {
	Deliver(ctx context.Context, n *flashsale.Notification) error
}

// Worker handles order events for notification.
type Worker struct {
	store Store
	sink  Sink
	log   *slog.Logger
}

// NewWorker returns a worker.
func NewWorker(store Store, sink Sink, log *slog.Logger) *Worker {
	return &Worker{store: store, sink: sink, log: log}
}

// Handle stores the event's notification once and delivers it unless it was delivered
// already. A crash between delivering and marking delivers again on redelivery, so webhook
// receivers get the event id to deduplicate by.
func (w *Worker) Handle(ctx context.Context, e flashsale.OrderEvent) error {
	switch e.Type {
	case flashsale.EventOrderCancelled, flashsale.EventOrderExpired:
		return nil // told with its settlement
	case flashsale.EventOrderSettlementDue:
		return nil // the payment worker's business alone
	}
	subject, body := Render(e)
	n, err := w.store.SaveNotification(ctx, &flashsale.Notification{
		UserID: e.UserID, EventID: e.EventID, OrderID: e.OrderID, Kind: e.Type, Subject: subject, Body: body,
	})
	if err != nil {
		return err
	}
	if n.DeliveredAt != nil {
		return nil
	}
	if err := w.sink.Deliver(ctx, n); err != nil {
		return err
	}
	return w.store.MarkDelivered(ctx, n.UserID, n.ID, time.Now())
}

// Render writes the message for an event.
func Render(e flashsale.OrderEvent) (subject, body string) {
	amount := fmt.Sprintf("%d.%02d", e.TotalCents/100, e.TotalCents%100)
	switch e.Type {
	case flashsale.EventOrderPlaced:
		return "We got your order", fmt.Sprintf("Order %s for %d unit(s), %s, is reserved for you while we take payment.", e.OrderID, e.Quantity, amount)
	case flashsale.EventOrderPaid:
		return "Payment received", fmt.Sprintf("Order %s is paid (%s). Thank you!", e.OrderID, amount)
	case flashsale.EventOrderSettled:
		return renderSettled(e, amount)
	}
	return "Order update", fmt.Sprintf("Order %s is now %s.", e.OrderID, e.Status)
}

// renderSettled writes the message of an order that ended: cancelled or expired, and
// refunded or never charged.
func renderSettled(e flashsale.OrderEvent, amount string) (subject, body string) {
	switch {
	case e.Status == flashsale.OrderExpired && e.Refunded:
		return "Reservation expired and refunded", fmt.Sprintf("Order %s expired before its payment went through, and its units went back on sale. The %s charged for it has been refunded.", e.OrderID, amount)
	case e.Status == flashsale.OrderExpired:
		return "Reservation expired", fmt.Sprintf("Order %s expired before it was paid, and its units went back on sale. You have not been charged for it.", e.OrderID)
	case e.Refunded:
		return "Order cancelled and refunded", fmt.Sprintf("Order %s was cancelled, and its units went back on sale. The %s you paid has been refunded.", e.OrderID, amount)
	}
	return "Order cancelled", fmt.Sprintf("Order %s was cancelled, and its units went back on sale. You have not been charged for it.", e.OrderID)
}
