package flashsale

import "time"

// Notification is a message to a buyer about one of their orders, kept on the buyer's shard.
type Notification struct {
	ID          int64
	UserID      UserID
	EventID     string
	OrderID     OrderID
	Kind        string // the event type
	Subject     string
	Body        string
	CreatedAt   time.Time
	DeliveredAt *time.Time
}

// SaleStats are a flash sale's figures, counted by the analytics worker from order events.
type SaleStats struct {
	Orders       int
	UnitsSold    int
	RevenueCents int
	PaidOrders   int
	Cancelled    int
	// Attempts counts every reservation attempt the sale's pool saw; Conversion is Orders over
	// Attempts (0 when there were none).
	Attempts   int
	Conversion float64
	PerMinute  []MinuteStats
}

// MinuteStats are one minute of a sale.
type MinuteStats struct {
	Minute       time.Time
	Orders       int
	Units        int
	RevenueCents int
}
