package flashsale

import (
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
	return nil
}
