package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
)

// newBuyer inserts a customer with a dummy hash.
func newBuyer(t *testing.T, db *postgres.DB) flashsale.UserID {
	t.Helper()
	u := &flashsale.User{Email: testenv.Name() + "@example.test", Name: "B", Role: flashsale.RoleCustomer, PasswordHash: "x"}
	if err := postgres.NewUserStore(db).CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func TestOrderWritesItsEventInTheSameTransaction(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 2, postgres.Options{})
	ctx := context.Background()
	orders, outbox := postgres.NewOrderStore(db), postgres.NewOutbox(db)
	user := newBuyer(t, db)
	o := &flashsale.Order{ID: flashsale.NewOrderID(user), UserID: user, ProductID: flashsale.NewProductID(5), Quantity: 1, TotalCents: 100, IdempotencyKey: "k"}
	if err := orders.CreateOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	dup := *o
	dup.ID = flashsale.NewOrderID(user)
	if err := orders.CreateOrder(ctx, &dup); flashsale.ErrorCode(err) != flashsale.ECONFLICT {
		t.Errorf("second order with the same key: err = %v, want CONFLICT", err)
	}
	if _, err := orders.TransitionOrder(ctx, o.ID, []flashsale.OrderStatus{flashsale.OrderPending}, flashsale.OrderPaid); err != nil {
		t.Fatal(err)
	}
	if _, err := orders.TransitionOrder(ctx, o.ID, []flashsale.OrderStatus{flashsale.OrderPending}, flashsale.OrderExpired); flashsale.ErrorCode(err) != flashsale.ECONFLICT {
		t.Errorf("expiring a paid order: err = %v, want CONFLICT", err)
	}
	shard := db.ShardOf(o.ID.Bucket())
	pending := func(dest flashsale.OutboxDestination) bool {
		t.Helper()
		p, err := outbox.Pending(ctx, shard, dest)
		if err != nil {
			t.Fatalf("pending to %s: %v", dest, err)
		}
		return p
	}
	if !pending(flashsale.ToRabbitMQ) || !pending(flashsale.ToKafka) {
		t.Errorf("pending = false with events unsent to a destination; want true")
	}
	// Placed and paid: two events; the refused insert and move wrote none.
	if n, err := outbox.Backlog(ctx, flashsale.ToRabbitMQ); err != nil || n != 2 {
		t.Errorf("outbox = %d, %v; want 2", n, err)
	}
	var types []string
	n, err := outbox.Relay(ctx, shard, flashsale.ToRabbitMQ, 10, func(_ context.Context, rows []flashsale.OutboxEvent) error {
		for _, r := range rows {
			types = append(types, r.Type)
		}
		return nil
	})
	if err != nil || n != 2 || fmt.Sprint(types) != "[order.placed order.paid]" {
		t.Errorf("relayed %d %v, %v; want [order.placed order.paid]", n, types, err)
	}
	if n, _ := outbox.Backlog(ctx, flashsale.ToRabbitMQ); n != 0 {
		t.Errorf("backlog after relay = %d, want 0", n)
	}
	if pending(flashsale.ToRabbitMQ) {
		t.Errorf("pending to RabbitMQ after relay = true; want false")
	}
	if n, _ := outbox.Backlog(ctx, flashsale.ToKafka); n != 2 || !pending(flashsale.ToKafka) {
		t.Errorf("Kafka backlog = %d, want 2 and pending: each destination has its own mark", n)
	}
}

func TestNotificationsAreStoredOncePerEvent(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 2, postgres.Options{})
	store := postgres.NewNotificationStore(db)
	user := newBuyer(t, db)
	ctx := context.Background()
	n := &flashsale.Notification{UserID: user, EventID: "6f1c1a9e-3c1b-4b4e-9a55-0c6a2f0b8f11", OrderID: flashsale.NewOrderID(user), Kind: flashsale.EventOrderPaid, Subject: "s", Body: "b"}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := store.SaveNotification(ctx, n); err != nil {
				t.Errorf("save: %v", err)
			}
		})
	}
	wg.Wait()
	list, _, err := store.ListNotifications(ctx, user, 10, 0)
	if err != nil || len(list) != 1 {
		t.Fatalf("notifications = %d, %v; want 1", len(list), err)
	}
	if err := store.MarkDelivered(ctx, user, list[0].ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	again, err := store.SaveNotification(ctx, n)
	if err != nil || again.DeliveredAt == nil {
		t.Errorf("redelivered event: %+v, %v; want the delivered notification", again, err)
	}
}

func TestSaleStatsCountEachEventOnce(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 2, postgres.Options{})
	stats := postgres.NewStatsStore(db)
	ctx := context.Background()
	sale := flashsale.NewSaleID(7)
	user := flashsale.NewUserID(9)
	order := &flashsale.Order{ID: flashsale.NewOrderID(user), UserID: user, SaleID: sale, Quantity: 2, TotalCents: 1000, UpdatedAt: time.Now()}
	placed := flashsale.NewOrderEvent(flashsale.EventOrderPlaced, order)
	paid := flashsale.NewOrderEvent(flashsale.EventOrderPaid, order)
	var wg sync.WaitGroup
	for range 5 { // redeliveries, and two analytics replicas
		for _, e := range []flashsale.OrderEvent{placed, paid} {
			wg.Go(func() {
				if _, err := stats.Count(ctx, e); err != nil {
					t.Errorf("count: %v", err)
				}
			})
		}
	}
	wg.Wait()
	st, err := stats.SaleStats(ctx, sale)
	if err != nil {
		t.Fatal(err)
	}
	if st.Orders != 1 || st.UnitsSold != 2 || st.RevenueCents != 1000 || st.PaidOrders != 1 {
		t.Errorf("stats = %+v, want 1 order, 2 units, 1000 cents, 1 paid", st)
	}
}
