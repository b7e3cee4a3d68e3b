package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale"
)

// NotificationStore keeps notifications on their buyer's shard.
type NotificationStore struct{ db *DB }

// NewNotificationStore returns a store over db.
func NewNotificationStore(db *DB) *NotificationStore { return &NotificationStore{db: db} }

// SaveNotification stores n unless a notification for its event exists, and returns the
// stored one: a redelivered event finds the first and learns whether it was delivered.
func (s *NotificationStore) SaveNotification(ctx context.Context, n *flashsale.Notification) (*flashsale.Notification, error) {
	pool := s.db.poolFor(n.UserID.Bucket())
	id := int64(flashsale.NewOrderID(n.UserID)) // an id in the buyer's bucket
	_, err := pool.Exec(ctx,
		`INSERT INTO notifications (id, bucket, user_id, event_id, order_id, kind, subject, body)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING`,
		id, n.UserID.Bucket(), n.UserID, n.EventID, n.OrderID, n.Kind, n.Subject, n.Body)
	if err != nil {
		return nil, fmt.Errorf("save notification: %w", err)
	}
	stored, err := scanNotification(pool.QueryRow(ctx, `SELECT `+notificationColumns+` FROM notifications WHERE event_id = $1`, n.EventID))
	if err != nil {
		return nil, fmt.Errorf("read notification: %w", err)
	}
	return stored, nil
}

const notificationColumns = `id, user_id, event_id::text, order_id, kind, subject, body, created_at, delivered_at`

func scanNotification(row pgx.Row) (*flashsale.Notification, error) {
	var n flashsale.Notification
	err := row.Scan(&n.ID, &n.UserID, &n.EventID, &n.OrderID, &n.Kind, &n.Subject, &n.Body, &n.CreatedAt, &n.DeliveredAt)
	return &n, err
}

// MarkDelivered records that a notification reached its sink.
func (s *NotificationStore) MarkDelivered(ctx context.Context, user flashsale.UserID, id int64, at time.Time) error {
	_, err := s.db.poolFor(user.Bucket()).Exec(ctx, `UPDATE notifications SET delivered_at = $2 WHERE id = $1`, id, at)
	if err != nil {
		return fmt.Errorf("mark notification %d delivered: %w", id, err)
	}
	return nil
}

// ListNotifications returns up to first of a user's notifications older than `before` (0:
// the newest), newest first, and whether more follow.
func (s *NotificationStore) ListNotifications(ctx context.Context, user flashsale.UserID, first int, before int64) ([]*flashsale.Notification, bool, error) {
	if before == 0 {
		before = 1<<63 - 1
	}
	rows, err := s.db.poolFor(user.Bucket()).Query(ctx,
		`SELECT `+notificationColumns+` FROM notifications WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`,
		user, before, first+1)
	if err != nil {
		return nil, false, fmt.Errorf("list notifications: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*flashsale.Notification, error) { return scanNotification(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list notifications: %w", err)
	}
	if len(list) > first {
		return list[:first], true, nil
	}
	return list, false, nil
}
