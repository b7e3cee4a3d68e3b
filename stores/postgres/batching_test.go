package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
)

// buyersOnEveryShard creates buyers until every shard has at least perShard of them, so that
// batches run on every shard at once.
func buyersOnEveryShard(t *testing.T, db *postgres.DB, perShard int) []flashsale.UserID {
	t.Helper()
	count := make([]int, db.Shards())
	var users []flashsale.UserID
	for attempts := 0; ; attempts++ {
		done := true
		for _, n := range count {
			done = done && n >= perShard
		}
		if done {
			return users
		}
		if attempts > 50*perShard*db.Shards() {
			t.Fatalf("buyers per shard = %v after %d users, want %d each", count, attempts, perShard)
		}
		u := newBuyer(t, db)
		if s := db.ShardOf(u.Bucket()); count[s] < perShard {
			count[s]++
			users = append(users, u)
		}
	}
}

// countRows sums a count(*) query over every shard.
func countRows(t *testing.T, db *postgres.DB, query string, args ...any) int {
	t.Helper()
	total := 0
	for s := range db.Shards() {
		var n int
		if err := db.Pool(s).QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
			t.Fatalf("shard %d: %s: %v", s, query, err)
		}
		total += n
	}
	return total
}

// Two calls per event, from two stores over the same shards (two notification workers, each
// with its own batches), all at once: each event gets one row, and both of its callers get it.
func TestSaveNotificationConcurrentCallsStoreOneRowPerEvent(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 2, postgres.Options{})
	stores := []*postgres.NotificationStore{postgres.NewNotificationStore(db), postgres.NewNotificationStore(db)}
	users := buyersOnEveryShard(t, db, 3)
	ctx := context.Background()

	const events = 100
	notes := make([]*flashsale.Notification, events)
	for i := range notes {
		user := users[i%len(users)]
		notes[i] = &flashsale.Notification{
			UserID: user, EventID: uuid.NewString(), OrderID: flashsale.NewOrderID(user),
			Kind: flashsale.EventOrderPlaced, Subject: fmt.Sprintf("subject %d", i), Body: fmt.Sprintf("body %d", i),
		}
	}
	got := make([][2]*flashsale.Notification, events)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range events {
		for c := range 2 {
			wg.Go(func() {
				<-start
				// Each call gets its own copy, as the worker's calls do.
				n := *notes[i]
				stored, err := stores[c].SaveNotification(ctx, &n)
				if err != nil {
					t.Errorf("save event %d, call %d: %v", i, c, err)
					return
				}
				got[i][c] = stored
			})
		}
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}

	if n := countRows(t, db, `SELECT count(*) FROM notifications`); n != events {
		t.Errorf("notification rows = %d, want %d", n, events)
	}
	for i, pair := range got {
		a, b := pair[0], pair[1]
		if a == nil || b == nil {
			t.Errorf("event %d: got %v and %v, want a notification for both callers", i, a, b)
			continue
		}
		if a.ID != b.ID {
			t.Errorf("event %d: callers got ids %d and %d, want the same", i, a.ID, b.ID)
		}
		want := notes[i]
		if a.EventID != want.EventID || a.UserID != want.UserID || a.OrderID != want.OrderID ||
			a.Subject != want.Subject || a.Body != want.Body || a.Kind != want.Kind || a.DeliveredAt != nil {
			t.Errorf("event %d: stored %+v, want the fields of %+v", i, a, want)
		}
		if a.ID == 0 || flashsale.OrderID(a.ID).Bucket() != want.UserID.Bucket() {
			t.Errorf("event %d: id %d is not in the buyer's bucket %d", i, a.ID, want.UserID.Bucket())
		}
	}

	// A later call for a stored event returns the stored row, not a new one.
	again := *notes[0]
	again.Subject = "changed"
	stored, err := stores[0].SaveNotification(ctx, &again)
	if err != nil || stored.ID != got[0][0].ID || stored.Subject != notes[0].Subject {
		t.Errorf("saving event 0 again = %+v, %v; want the stored notification %d", stored, err, got[0][0].ID)
	}
}

// Two calls for one event in one batch get one row: the batch must not insert it twice nor
// fail on it.
func TestSaveNotificationSameEventTwiceInOneBatch(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 1, postgres.Options{})
	store := postgres.NewNotificationStore(db)
	user := newBuyer(t, db)
	ctx := context.Background()
	// Many callers for a few events, so that batches form with an event in them twice
	// (the first call goes alone; the rest queue behind it and share the next batch).
	eventIDs := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	ids := make(map[string]map[int64]bool)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			eventID := eventIDs[i%len(eventIDs)]
			n, err := store.SaveNotification(ctx, &flashsale.Notification{
				UserID: user, EventID: eventID, OrderID: flashsale.NewOrderID(user), Kind: flashsale.EventOrderPaid, Subject: "s", Body: "b",
			})
			if err != nil {
				t.Errorf("save: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ids[eventID] == nil {
				ids[eventID] = map[int64]bool{}
			}
			ids[eventID][n.ID] = true
		})
	}
	wg.Wait()
	for _, e := range eventIDs {
		if len(ids[e]) != 1 {
			t.Errorf("event %s: callers got ids %v, want one", e, ids[e])
		}
	}
	if n := countRows(t, db, `SELECT count(*) FROM notifications`); n != len(eventIDs) {
		t.Errorf("notification rows = %d, want %d", n, len(eventIDs))
	}
}

func TestMarkDeliveredConcurrentCallsSetDeliveredAt(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 2, postgres.Options{})
	store := postgres.NewNotificationStore(db)
	users := buyersOnEveryShard(t, db, 2)
	ctx := context.Background()

	const count = 60
	saved := make([]*flashsale.Notification, count)
	for i := range saved {
		user := users[i%len(users)]
		n, err := store.SaveNotification(ctx, &flashsale.Notification{
			UserID: user, EventID: uuid.NewString(), OrderID: flashsale.NewOrderID(user), Kind: flashsale.EventOrderPaid, Subject: "s", Body: "b",
		})
		if err != nil {
			t.Fatal(err)
		}
		saved[i] = n
	}
	// Every notification is marked at its own time, the first ten twice (a redelivery).
	base := time.Now().UTC().Truncate(time.Microsecond)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, n := range saved {
		calls := 1
		if i < 10 {
			calls = 2
		}
		for range calls {
			wg.Go(func() {
				<-start
				if err := store.MarkDelivered(ctx, n.UserID, n.ID, at(i)); err != nil {
					t.Errorf("mark %d delivered: %v", n.ID, err)
				}
			})
		}
	}
	close(start)
	wg.Wait()

	for i, n := range saved {
		var delivered *time.Time
		err := db.Pool(db.ShardOf(n.UserID.Bucket())).QueryRow(ctx,
			`SELECT delivered_at FROM notifications WHERE id = $1`, n.ID).Scan(&delivered)
		if err != nil {
			t.Fatalf("read notification %d: %v", n.ID, err)
		}
		if delivered == nil || !delivered.Equal(at(i)) {
			t.Errorf("notification %d: delivered_at = %v, want %v", n.ID, delivered, at(i))
		}
	}
	if n := countRows(t, db, `SELECT count(*) FROM notifications WHERE delivered_at IS NULL`); n != 0 {
		t.Errorf("%d notifications left undelivered, want 0", n)
	}
	// The worker learns of the delivery from a redelivered event.
	again, err := store.SaveNotification(ctx, &flashsale.Notification{UserID: saved[0].UserID, EventID: saved[0].EventID})
	if err != nil || again.ID != saved[0].ID || again.DeliveredAt == nil {
		t.Errorf("saving a delivered event again = %+v, %v; want notification %d, delivered", again, err, saved[0].ID)
	}
}

// saleFigures are the totals a set of events should add up to.
type saleFigures struct {
	orders, units, revenue, paid, cancelled int
	perMinute                               map[time.Time][3]int // orders, units, revenue
}

func expectFigures(events []flashsale.OrderEvent) map[flashsale.SaleID]*saleFigures {
	want := map[flashsale.SaleID]*saleFigures{}
	for _, e := range events {
		if e.SaleID == 0 {
			continue
		}
		f := want[e.SaleID]
		if f == nil {
			f = &saleFigures{perMinute: map[time.Time][3]int{}}
			want[e.SaleID] = f
		}
		m := f.perMinute[e.At.UTC().Truncate(time.Minute)]
		switch e.Type {
		case flashsale.EventOrderPlaced:
			f.orders, f.units, f.revenue = f.orders+1, f.units+e.Quantity, f.revenue+e.TotalCents
			m = [3]int{m[0] + 1, m[1] + e.Quantity, m[2] + e.TotalCents}
		case flashsale.EventOrderPaid:
			f.paid++
		case flashsale.EventOrderCancelled, flashsale.EventOrderExpired:
			f.units, f.revenue, f.cancelled = f.units-e.Quantity, f.revenue-e.TotalCents, f.cancelled+1
			m = [3]int{m[0], m[1] - e.Quantity, m[2] - e.TotalCents}
		}
		f.perMinute[e.At.UTC().Truncate(time.Minute)] = m
	}
	return want
}

// saleEvents makes a life for each of orders orders of the sales: placed, then paid,
// cancelled or expired, spread over a few minutes.
func saleEvents(sales []flashsale.SaleID, orders int) []flashsale.OrderEvent {
	minute := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var events []flashsale.OrderEvent
	for i := range orders {
		user := flashsale.NewUserID(i % flashsale.Buckets)
		o := &flashsale.Order{
			ID: flashsale.NewOrderID(user), UserID: user, SaleID: sales[i%len(sales)],
			Quantity: 1 + i%3, TotalCents: 250 * (1 + i%3),
			UpdatedAt: minute.Add(time.Duration(i%4)*time.Minute + time.Duration(i%59)*time.Second),
		}
		events = append(events, flashsale.NewOrderEvent(flashsale.EventOrderPlaced, o))
		o.UpdatedAt = o.UpdatedAt.Add(30 * time.Second)
		next := []string{flashsale.EventOrderPaid, flashsale.EventOrderPaid, flashsale.EventOrderCancelled, flashsale.EventOrderExpired}[i%4]
		events = append(events, flashsale.NewOrderEvent(next, o))
	}
	return events
}

func TestCountManyCountsEachEventOnce(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 2, postgres.Options{})
	stats := postgres.NewStatsStore(db)
	ctx := context.Background()
	// Sales on both shards.
	sales := []flashsale.SaleID{flashsale.NewSaleID(0), flashsale.NewSaleID(flashsale.Buckets - 1), flashsale.NewSaleID(flashsale.Buckets / 3)}
	if db.ShardOf(sales[0].Bucket()) == db.ShardOf(sales[1].Bucket()) {
		t.Fatalf("sales %v are on one shard; the test wants both", sales[:2])
	}
	events := saleEvents(sales, 120)
	// An event of no sale counts nothing.
	user := flashsale.NewUserID(1)
	noSale := flashsale.NewOrderEvent(flashsale.EventOrderPlaced, &flashsale.Order{ID: flashsale.NewOrderID(user), UserID: user, Quantity: 1, TotalCents: 1})

	// The first call has each of its events twice, and the event of no sale.
	first := events[:100]
	batch := append(append(append([]flashsale.OrderEvent{}, first...), first...), noSale)
	counted, err := stats.CountMany(ctx, batch)
	if err != nil || counted != len(first) {
		t.Fatalf("CountMany(first %d events, twice each) = %d, %v; want %d", len(first), counted, err, len(first))
	}
	// Then concurrent calls that overlap with it and with each other: redeliveries and two
	// analytics replicas. Each remaining event must be counted by exactly one of them.
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
	)
	for c := range 4 {
		wg.Go(func() {
			overlap := append([]flashsale.OrderEvent{}, events[50+c*10:]...)
			n, err := stats.CountMany(ctx, append(overlap, events[c]))
			if err != nil {
				t.Errorf("concurrent CountMany %d: %v", c, err)
			}
			mu.Lock()
			defer mu.Unlock()
			total += n
		})
	}
	wg.Wait()
	if want := len(events) - len(first); total != want {
		t.Errorf("concurrent calls counted %d events, want %d (the ones not counted yet)", total, want)
	}
	if counted, err := stats.CountMany(ctx, events); err != nil || counted != 0 {
		t.Errorf("CountMany(every event again) = %d, %v; want 0", counted, err)
	}
	if counted, err := stats.Count(ctx, events[0]); err != nil || counted {
		t.Errorf("Count(a counted event) = %v, %v; want false", counted, err)
	}

	for sale, want := range expectFigures(events) {
		st, err := stats.SaleStats(ctx, sale)
		if err != nil {
			t.Fatal(err)
		}
		if st.Orders != want.orders || st.UnitsSold != want.units || st.RevenueCents != want.revenue ||
			st.PaidOrders != want.paid || st.Cancelled != want.cancelled {
			t.Errorf("sale %d: stats = %d orders, %d units, %d cents, %d paid, %d cancelled; want %+v",
				sale, st.Orders, st.UnitsSold, st.RevenueCents, st.PaidOrders, st.Cancelled, *want)
		}
		if len(st.PerMinute) != len(want.perMinute) {
			t.Errorf("sale %d: %d minutes, want %d", sale, len(st.PerMinute), len(want.perMinute))
		}
		for _, m := range st.PerMinute {
			if w := want.perMinute[m.Minute]; [3]int{m.Orders, m.Units, m.RevenueCents} != w {
				t.Errorf("sale %d, minute %v: %d orders, %d units, %d cents; want %v", sale, m.Minute, m.Orders, m.Units, m.RevenueCents, w)
			}
		}
	}
	if n := countRows(t, db, `SELECT count(*) FROM analytics_seen`); n != len(events) {
		t.Errorf("analytics_seen rows = %d, want %d (one per event of a sale)", n, len(events))
	}
}

// An event id that is not a UUID fails the call before anything is written, so that the
// caller can tell it apart from an outage.
func TestCountManyRefusesBadEventID(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 1, postgres.Options{})
	stats := postgres.NewStatsStore(db)
	events := saleEvents([]flashsale.SaleID{flashsale.NewSaleID(3)}, 2)
	events[1].EventID = "not-a-uuid"
	_, err := stats.CountMany(context.Background(), events)
	if flashsale.ErrorCode(err) != flashsale.EINVALID {
		t.Errorf("CountMany with a bad event id: err = %v, want %s", err, flashsale.EINVALID)
	}
	if n := countRows(t, db, `SELECT count(*) FROM analytics_seen`); n != 0 {
		t.Errorf("analytics_seen rows = %d, want 0", n)
	}
}

// The batch statements must really batch: concurrent saves on one shard share statements.
func TestConcurrentNotificationWritesShareStatements(t *testing.T) {
	t.Parallel()
	statements := &statementCounter{}
	db, _ := testenv.DB(t, 1, postgres.Options{Tracer: func(int) pgx.QueryTracer { return statements }})
	store := postgres.NewNotificationStore(db)
	user := newBuyer(t, db)
	ctx := context.Background()
	const calls = 100
	before := statements.count("notifications")
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range calls {
		wg.Go(func() {
			<-start
			n, err := store.SaveNotification(ctx, &flashsale.Notification{
				UserID: user, EventID: uuid.NewString(), OrderID: flashsale.NewOrderID(user), Kind: flashsale.EventOrderPaid, Subject: "s", Body: "b",
			})
			if err == nil {
				err = store.MarkDelivered(ctx, user, n.ID, time.Now())
			}
			if err != nil {
				t.Errorf("save and mark: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	// One statement each would be 2*calls.
	if got := statements.count("notifications") - before; got >= calls {
		t.Errorf("%d concurrent saves and marks sent %d statements, want fewer than %d", calls, got, calls)
	}
	if n := countRows(t, db, `SELECT count(*) FROM notifications WHERE delivered_at IS NOT NULL`); n != calls {
		t.Errorf("delivered notifications = %d, want %d", n, calls)
	}
}

// statementCounter counts statements by a word of their text.
type statementCounter struct {
	mu  sync.Mutex
	sql []string
}

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sql = append(c.sql, data.SQL)
	return ctx
}

func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *statementCounter) count(word string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.sql {
		if strings.Contains(s, word) {
			n++
		}
	}
	return n
}
