package flashsale

import (
	"context"
	"time"
)

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
	// PaidOrders counts the orders paid and not cancelled since; Cancelled counts cancels and
	// expiries alike; RefundedOrders counts the orders whose charge was refunded.
	PaidOrders     int
	Cancelled      int
	RefundedOrders int
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

// NotificationReader reads a user's notifications.
type NotificationReader interface {
	// ListNotifications returns up to first notifications older than `before` (0: the
	// newest), newest first, and whether more follow. It reads one shard.
	ListNotifications(ctx context.Context, user UserID, first int, before int64) ([]*Notification, bool, error)
}

// StatsReader reads a flash sale's figures.
type StatsReader interface {
	// SaleStats returns the figures counted so far (zero figures for a sale with none).
	SaleStats(ctx context.Context, sale SaleID) (*SaleStats, error)
}

// NotificationIDString is the public form of a notification id.
func NotificationIDString(id int64) string { return formatID("ntf", id) }

// ParseNotificationID reads the public form of a notification id.
func ParseNotificationID(s string) (int64, error) { return parseID("ntf", s) }
