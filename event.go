package flashsale

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Order event types: the routing keys on RabbitMQ and the type field on Kafka.
const (
	EventOrderPlaced    = "order.placed"
	EventOrderPaid      = "order.paid"
	EventOrderCancelled = "order.cancelled"
	EventOrderExpired   = "order.expired"
	// EventOrderSettled says how the payment of a cancelled or expired order ended: refunded
	// (Refunded set), or never charged. It follows every cancel and expiry, once per order,
	// and is what tells the buyer whether they were charged.
	EventOrderSettled = "order.settled"
	// EventOrderSettlementDue asks again for the settlement of an ended order that is still
	// unsettled long after it ended (its event was dead-lettered, say). Only the payment
	// worker acts on it; it counts and notifies nothing.
	EventOrderSettlementDue = "order.settlement_due"
)

// OrderEvent says that an order was placed or changed status. It is written to the outbox in
// the same transaction as the change, so it exists exactly when the change does; consumers
// see it at least once and deduplicate by EventID.
type OrderEvent struct {
	EventID    string      `json:"eventId"`
	Type       string      `json:"type"`
	OrderID    OrderID     `json:"orderId"`
	UserID     UserID      `json:"userId"`
	ProductID  ProductID   `json:"productId"`
	SaleID     SaleID      `json:"saleId,omitempty"`
	Quantity   int         `json:"quantity"`
	TotalCents int         `json:"totalCents"`
	Status     OrderStatus `json:"status"`
	// From is the status a move left (empty for order.placed and order.settled): a cancel
	// from PAID takes the order out of the sale's paid orders.
	From OrderStatus `json:"from,omitempty"`
	// Refunded says, on order.settled, that the order's charge was refunded.
	Refunded bool      `json:"refunded,omitempty"`
	At       time.Time `json:"at"`
}

// NewOrderEvent returns the event of an order's current state.
func NewOrderEvent(typ string, o *Order) OrderEvent {
	return OrderEvent{
		EventID: uuid.NewString(), Type: typ, OrderID: o.ID, UserID: o.UserID, ProductID: o.ProductID,
		SaleID: o.SaleID, Quantity: o.Quantity, TotalCents: o.TotalCents, Status: o.Status, At: o.UpdatedAt,
	}
}

// PartitionKey is the event's Kafka key: its order's id. An order's events keep their order
// on one partition, and a sale's orders spread over every partition, so that the analytics
// workers share a sale; their counts stay exact since each event is counted once, by id, in
// any order.
func (e OrderEvent) PartitionKey() string { return e.OrderID.String() }

// EventTypeFor returns the event type of a move to status.
func EventTypeFor(status OrderStatus) string {
	switch status {
	case OrderPaid:
		return EventOrderPaid
	case OrderCancelled:
		return EventOrderCancelled
	case OrderExpired:
		return EventOrderExpired
	}
	return EventOrderPlaced
}

// Priority is the event's queue priority: flash-sale orders are paid first, since their
// buyers are watching a countdown.
func (e OrderEvent) Priority() uint8 {
	if e.SaleID != 0 {
		return 5
	}
	return 1
}

// OrderUpdates carries order changes between processes, so that a buyer's open subscription
// on any API replica hears of a payment made by a worker elsewhere.
type OrderUpdates interface {
	// PublishOrder announces an order's new state.
	PublishOrder(ctx context.Context, o *Order) error
}
