package postgres

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/combine"
)

// NotificationStore keeps notifications on their buyer's shard.
type NotificationStore struct {
	db         *DB
	saves      *combine.Combiner[newNotification, *flashsale.Notification]
	deliveries *combine.Combiner[delivery, struct{}]
}

// Batching of the notification worker's writes. Each of its handlers saves a notification
// and marks it delivered, two one-row writes per event; in a flash sale thousands of events
// arrive in a burst, and one statement and one commit per row is what PostgreSQL's CPU goes
// on. One writer per shard gives the largest batches: nobody waits on a notification the way
// a buyer waits on an order, and a lone write still starts at once.
const (
	notificationBatchRows = 128
	notificationWriters   = 1
)

// NewNotificationStore returns a store over db.
func NewNotificationStore(db *DB) *NotificationStore {
	s := &NotificationStore{db: db}
	s.saves = combine.New(db.Shards(), notificationBatchRows, notificationWriters, s.saveNotifications, isRowError)
	s.deliveries = combine.New(db.Shards(), notificationBatchRows, notificationWriters, s.markDelivered, isRowError)
	return s
}

// SaveNotification stores n unless a notification for its event exists, and returns the
// stored one: a redelivered event finds the first and learns whether it was delivered.
// Concurrent calls for one shard share statements (see internal/combine).
func (s *NotificationStore) SaveNotification(ctx context.Context, n *flashsale.Notification) (*flashsale.Notification, error) {
	// Parsed here, not left to PostgreSQL, so that the batch can match stored rows to calls
	// by the canonical text PostgreSQL returns, whatever case the caller wrote it in.
	eventID, err := uuid.Parse(n.EventID)
	if err != nil {
		return nil, fmt.Errorf("save notification: event id %q: %w", n.EventID, err)
	}
	row := newNotification{
		id:      int64(flashsale.NewOrderID(n.UserID)), // an id in the buyer's bucket
		eventID: eventID.String(),
		n:       n,
	}
	stored, err := s.saves.Do(ctx, s.db.ShardOf(n.UserID.Bucket()), row)
	if err != nil {
		return nil, fmt.Errorf("save notification of event %s: %w", n.EventID, err)
	}
	return stored, nil
}

// newNotification is one row of saveNotifications.
type newNotification struct {
	id      int64
	eventID string // canonical
	n       *flashsale.Notification
}

// saveNotifications inserts a batch of notifications, skipping events that have one, and
// returns the stored notification of every row's event.
//
// It is one statement: the CTE inserts and returns the new rows, and the outer query adds
// the rows that existed already. The two halves cannot overlap: the outer SELECT reads the
// statement's snapshot, which never shows the CTE's own inserts, and a row in that snapshot
// makes the insert skip its event. The snapshot can miss one row, though: one committed by a
// concurrent batch (of another worker process) after the statement began, which the insert
// waited for and skipped. Such events, found missing, are read again by a second statement,
// whose new snapshot shows the row; that only happens when two processes race on one event.
func (s *NotificationStore) saveNotifications(ctx context.Context, shard int, rows []newNotification) ([]combine.Outcome[*flashsale.Notification], error) {
	unique := uniqueByEvent(rows)
	n := len(unique)
	ids, users, eventIDs, orders := make([]int64, n), make([]int64, n), make([]string, n), make([]int64, n)
	buckets := make([]int32, n)
	kinds, subjects, bodies := make([]string, n), make([]string, n), make([]string, n)
	for i, r := range unique {
		ids[i], buckets[i], users[i], eventIDs[i] = r.id, int32(r.n.UserID.Bucket()), int64(r.n.UserID), r.eventID
		orders[i], kinds[i], subjects[i], bodies[i] = int64(r.n.OrderID), r.n.Kind, r.n.Subject, r.n.Body
	}
	dbRows, err := s.db.pools[shard].Query(ctx,
		`WITH inserted AS (
		   INSERT INTO notifications (id, bucket, user_id, event_id, order_id, kind, subject, body)
		   SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::bigint[], $4::uuid[], $5::bigint[],
		                        $6::text[], $7::text[], $8::text[])
		   ON CONFLICT (event_id) DO NOTHING
		   RETURNING `+notificationColumns+`
		 )
		 SELECT * FROM inserted
		 UNION ALL
		 SELECT `+notificationColumns+` FROM notifications WHERE event_id = ANY($4::uuid[])`,
		ids, buckets, users, eventIDs, orders, kinds, subjects, bodies)
	if err != nil {
		return nil, err
	}
	stored, err := collectNotifications(dbRows)
	if err != nil {
		return nil, err
	}
	if err := s.readMissing(ctx, shard, eventIDs, stored); err != nil {
		return nil, err
	}
	outs := make([]combine.Outcome[*flashsale.Notification], len(rows))
	for i, r := range rows {
		outs[i] = notificationOutcome(stored[r.eventID], r.eventID)
	}
	return outs, nil
}

// uniqueByEvent keeps the first row of each event, so that two calls for one event in a
// batch insert one row and both get it, and sorts them by event id: an insert waits for a
// concurrent one of the same event, and two batches (of two worker processes) that share
// events could wait for each other if they inserted them in different orders.
func uniqueByEvent(rows []newNotification) []newNotification {
	seen := make(map[string]bool, len(rows))
	unique := make([]newNotification, 0, len(rows))
	for _, r := range rows {
		if !seen[r.eventID] {
			seen[r.eventID] = true
			unique = append(unique, r)
		}
	}
	slices.SortFunc(unique, func(a, b newNotification) int { return strings.Compare(a.eventID, b.eventID) })
	return unique
}

// readMissing adds to stored the rows of events the batch statement did not return (see
// saveNotifications for why it may not).
func (s *NotificationStore) readMissing(ctx context.Context, shard int, eventIDs []string, stored map[string]*flashsale.Notification) error {
	var missing []string
	for _, id := range eventIDs {
		if stored[id] == nil {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	rows, err := s.db.pools[shard].Query(ctx,
		`SELECT `+notificationColumns+` FROM notifications WHERE event_id = ANY($1::uuid[])`, missing)
	if err != nil {
		return fmt.Errorf("read notifications stored concurrently: %w", err)
	}
	found, err := collectNotifications(rows)
	if err != nil {
		return fmt.Errorf("read notifications stored concurrently: %w", err)
	}
	for id, n := range found {
		stored[id] = n
	}
	return nil
}

// collectNotifications reads rows of notificationColumns into a map by event id.
func collectNotifications(rows pgx.Rows) (map[string]*flashsale.Notification, error) {
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*flashsale.Notification, error) { return scanNotification(r) })
	if err != nil {
		return nil, err
	}
	byEvent := make(map[string]*flashsale.Notification, len(list))
	for _, n := range list {
		byEvent[n.EventID] = n
	}
	return byEvent, nil
}

// notificationOutcome gives each caller a copy of the stored notification, since two callers
// of one event share it and either may change what it gets.
func notificationOutcome(n *flashsale.Notification, eventID string) combine.Outcome[*flashsale.Notification] {
	if n == nil {
		// Only if the row was deleted between the insert and the read.
		return combine.Outcome[*flashsale.Notification]{Err: fmt.Errorf("notification of event %s is gone", eventID)}
	}
	c := *n
	return combine.Outcome[*flashsale.Notification]{Val: &c}
}

const notificationColumns = `id, user_id, event_id::text, order_id, kind, subject, body, created_at, delivered_at`

func scanNotification(row pgx.Row) (*flashsale.Notification, error) {
	var n flashsale.Notification
	err := row.Scan(&n.ID, &n.UserID, &n.EventID, &n.OrderID, &n.Kind, &n.Subject, &n.Body, &n.CreatedAt, &n.DeliveredAt)
	return &n, err
}

// MarkDelivered records that a notification reached its sink. Concurrent calls for one shard
// share statements (see internal/combine).
func (s *NotificationStore) MarkDelivered(ctx context.Context, user flashsale.UserID, id int64, at time.Time) error {
	if _, err := s.deliveries.Do(ctx, s.db.ShardOf(user.Bucket()), delivery{id: id, at: at}); err != nil {
		return fmt.Errorf("mark notification %d delivered: %w", id, err)
	}
	return nil
}

// delivery is one row of markDelivered.
type delivery struct {
	id int64
	at time.Time
}

// markDelivered sets delivered_at of a batch of notifications in one UPDATE. A notification
// given twice keeps its latest time (an UPDATE changes a row once, with any one of its
// matches), and ids go in ascending order so that two batches lock shared rows in the same
// order whatever order their callers came in.
func (s *NotificationStore) markDelivered(ctx context.Context, shard int, rows []delivery) ([]combine.Outcome[struct{}], error) {
	latest := make(map[int64]time.Time, len(rows))
	for _, r := range rows {
		if at, ok := latest[r.id]; !ok || r.at.After(at) {
			latest[r.id] = r.at
		}
	}
	ids := slices.Sorted(maps.Keys(latest))
	ats := make([]time.Time, len(ids))
	for i, id := range ids {
		ats[i] = latest[id]
	}
	_, err := s.db.pools[shard].Exec(ctx,
		`UPDATE notifications n SET delivered_at = d.at
		 FROM unnest($1::bigint[], $2::timestamptz[]) AS d(id, at)
		 WHERE n.id = d.id`, ids, ats)
	if err != nil {
		return nil, err
	}
	return make([]combine.Outcome[struct{}], len(rows)), nil
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
