package flashsale

import (
	"context"
	"io"
	"strings"
	"time"
)

// OrderStatus is where an order stands. PENDING holds its units; PAID keeps them; CANCELLED
// and EXPIRED have given them back.
type OrderStatus string

// The statuses of an order.
const (
	OrderPending   OrderStatus = "PENDING"
	OrderPaid      OrderStatus = "PAID"
	OrderCancelled OrderStatus = "CANCELLED"
	OrderExpired   OrderStatus = "EXPIRED"
)

// HoldsStock reports whether an order in this status keeps its units from the sale.
func (s OrderStatus) HoldsStock() bool { return s == OrderPending || s == OrderPaid }

// MarshalGQL writes the status as a GraphQL enum.
func (s OrderStatus) MarshalGQL(w io.Writer) { enumMarshal(w, string(s)) }

// UnmarshalGQL reads a GraphQL enum.
func (s *OrderStatus) UnmarshalGQL(v any) error {
	str, err := enumUnmarshal(v, func(s string) bool {
		switch OrderStatus(s) {
		case OrderPending, OrderPaid, OrderCancelled, OrderExpired:
			return true
		}
		return false
	}, "order status")
	*s = OrderStatus(str)
	return err
}

// Order is a buyer's claim on units of a product, at the product's price or a flash sale's.
// It lives on the buyer's shard.
type Order struct {
	ID             OrderID
	UserID         UserID
	ProductID      ProductID
	SaleID         SaleID // 0 for a regular order
	Quantity       int
	TotalCents     int
	Status         OrderStatus
	IdempotencyKey string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// RefundedAt is when the charge of a cancelled or expired order was refunded; nil if it
	// was not (yet) or the order was never charged.
	RefundedAt *time.Time
}

// MaxIdempotencyKeyLen bounds the client's idempotency key.
const MaxIdempotencyKeyLen = 128

// MaxOrderQuantity bounds the units of one order.
const MaxOrderQuantity = 1000

// ValidateOrderRequest checks the parts of an order request every kind of order shares.
// BAD_USER_INPUT.
func ValidateOrderRequest(quantity int, idempotencyKey string) error {
	switch {
	case quantity <= 0 || quantity > MaxOrderQuantity:
		return Errorf(EINVALID, "quantity must be between 1 and %d", MaxOrderQuantity)
	case strings.TrimSpace(idempotencyKey) == "":
		return Errorf(EINVALID, "idempotencyKey is required")
	case len(idempotencyKey) > MaxIdempotencyKeyLen:
		return Errorf(EINVALID, "idempotencyKey is longer than %d bytes", MaxIdempotencyKeyLen)
	}
	return CheckText("idempotencyKey", idempotencyKey)
}

// OrderTotal is what quantity units at unitCents cost, or BAD_USER_INPUT if that does not fit
// a GraphQL Int (the order's totalCents). Checked before any unit is reserved.
func OrderTotal(unitCents, quantity int) (int, error) {
	if unitCents < 0 || quantity < 0 || (quantity > 0 && unitCents > MaxGraphQLInt/quantity) {
		return 0, Errorf(EINVALID, "the order's total would exceed %d cents; order fewer units", MaxGraphQLInt)
	}
	return unitCents * quantity, nil
}

// Pool returns the stock pool the order's units come from.
func (o *Order) Pool() PoolKey {
	if o.SaleID != 0 {
		return SalePool(o.SaleID)
	}
	return ProductPool(o.ProductID)
}

// OrderStore keeps orders on their buyer's shard. Every write also writes the order's event
// to the outbox in the same transaction.
type OrderStore interface {
	// CreateOrder inserts a PENDING order with its order.placed event. CONFLICT if the buyer
	// already has an order with the idempotency key.
	CreateOrder(ctx context.Context, o *Order) error
	// CreateOrderWhen inserts the order as CreateOrder does but commits it only once confirm
	// answers nil; when confirm answers an error nothing is written and that error is
	// returned. The insert runs while the caller is still finding out, so the two take the
	// time of one. confirm may be called more than once and must give the same answer.
	CreateOrderWhen(ctx context.Context, o *Order, confirm func(context.Context) error) error
	// FindOrderByID returns NOT_FOUND if there is no such order.
	FindOrderByID(ctx context.Context, id OrderID) (*Order, error)
	// FindOrderByIdempotencyKey returns the buyer's order made with the key. NOT_FOUND.
	FindOrderByIdempotencyKey(ctx context.Context, user UserID, key string) (*Order, error)
	// FindOrdersByIDs returns one order or error per id, in the order of ids, with one
	// statement per shard touched; a missing id gets NOT_FOUND.
	FindOrdersByIDs(ctx context.Context, ids []OrderID) ([]*Order, []error)
	// ListUserOrders returns up to first of the user's orders older than `before` (0: the
	// newest), newest first, and whether more follow. It reads one shard.
	ListUserOrders(ctx context.Context, user UserID, first int, before OrderID) ([]*Order, bool, error)
	// ListOrdersOfUsers returns the newest `first` orders of each user (and whether each has
	// more), in the order of users, with one statement per shard touched.
	ListOrdersOfUsers(ctx context.Context, users []UserID, first int) ([][]*Order, []bool, []error)
	// TransitionOrder moves an order to `to` if its status is one of `from`, with the event
	// of the move, and returns the order as it now is. CONFLICT (with the order's current
	// status in the message) if it was in none of them; NOT_FOUND.
	TransitionOrder(ctx context.Context, id OrderID, from []OrderStatus, to OrderStatus) (*Order, error)
	// HoldingOrders returns, across all shards, the holds of the orders that keep units of a
	// pool (PENDING and PAID). A failing shard fails the call.
	HoldingOrders(ctx context.Context, pool PoolKey) ([]Hold, error)
	// SettleOrder records how the payment of a cancelled or expired order ended, refunded or
	// never charged, with its order.settled event, once per order: it reports settled=false,
	// changing nothing, if the order was settled before. CONFLICT if the order still holds
	// stock (PENDING or PAID); NOT_FOUND.
	SettleOrder(ctx context.Context, id OrderID, refunded bool) (o *Order, settled bool, err error)
	// RequestSettlements writes an order.settlement_due event for up to limit orders of each
	// shard that ended (cancelled or expired) before `before`, are still unsettled, and were
	// not asked for since `before`; it returns how many. A failing shard fails the call.
	RequestSettlements(ctx context.Context, before time.Time, limit int) (int, error)
	// StalePending returns up to limit PENDING orders created before `before`, across shards.
	StalePending(ctx context.Context, before time.Time, limit int) ([]*Order, error)
	// ListSaleOrders returns up to first orders of a sale older than `before` (0: the
	// newest), newest first, in the status if one is given, merged across the buyers'
	// shards, and whether more follow. A failing shard fails the call.
	ListSaleOrders(ctx context.Context, sale SaleID, status *OrderStatus, first int, before OrderID) ([]*Order, bool, error)
}
