package postgres_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
)

// outboxEvents claims every unsent event of every shard (for RabbitMQ) and returns them.
func outboxEvents(t *testing.T, db *postgres.DB) []flashsale.OrderEvent {
	t.Helper()
	var events []flashsale.OrderEvent
	for shard := range db.Shards() {
		for {
			n, err := postgres.NewOutbox(db).Relay(context.Background(), shard, flashsale.ToRabbitMQ, 100,
				func(_ context.Context, rows []flashsale.OutboxEvent) error {
					for _, r := range rows {
						var e flashsale.OrderEvent
						if err := json.Unmarshal(r.Payload, &e); err != nil {
							return err
						}
						events = append(events, e)
					}
					return nil
				})
			if err != nil {
				t.Fatalf("read the outbox of shard %d: %v", shard, err)
			}
			if n == 0 {
				break
			}
		}
	}
	return events
}

// A settlement is recorded once however many calls race, with exactly one order.settled
// event; the refund shows on the order.
func TestSettleOrderOnceWithItsEvent(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 2, postgres.Options{})
	ctx := context.Background()
	orders := postgres.NewOrderStore(db)
	user := newBuyer(t, db)
	o := &flashsale.Order{ID: flashsale.NewOrderID(user), UserID: user, ProductID: flashsale.NewProductID(3), Quantity: 2, TotalCents: 500, IdempotencyKey: "k"}
	if err := orders.CreateOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	if _, _, err := orders.SettleOrder(ctx, o.ID, true); flashsale.ErrorCode(err) != flashsale.ECONFLICT {
		t.Errorf("settling a PENDING order: err = %v, want CONFLICT", err)
	}
	if _, _, err := orders.SettleOrder(ctx, flashsale.NewOrderID(user), true); flashsale.ErrorCode(err) != flashsale.ENOTFOUND {
		t.Errorf("settling an unknown order: err = %v, want NOT_FOUND", err)
	}
	if _, err := orders.TransitionOrder(ctx, o.ID, []flashsale.OrderStatus{flashsale.OrderPending}, flashsale.OrderPaid); err != nil {
		t.Fatal(err)
	}
	cancelled, err := orders.TransitionOrder(ctx, o.ID, []flashsale.OrderStatus{flashsale.OrderPending, flashsale.OrderPaid}, flashsale.OrderCancelled)
	if err != nil {
		t.Fatal(err)
	}
	if cancelled.RefundedAt != nil {
		t.Errorf("refundedAt before the refund = %v, want nil", cancelled.RefundedAt)
	}

	var settled atomic.Int64
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			got, ok, err := orders.SettleOrder(ctx, o.ID, true)
			if err != nil {
				t.Errorf("settle: %v", err)
				return
			}
			if ok {
				settled.Add(1)
			}
			if got.RefundedAt == nil && ok {
				t.Errorf("the settling call's order has no refundedAt")
			}
		})
	}
	wg.Wait()
	if got := settled.Load(); got != 1 {
		t.Errorf("calls that settled = %d, want 1", got)
	}
	found, err := orders.FindOrderByID(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if found.RefundedAt == nil || found.Status != flashsale.OrderCancelled {
		t.Errorf("order after settlement = %s refundedAt %v, want CANCELLED with refundedAt", found.Status, found.RefundedAt)
	}

	var types []string
	var from []flashsale.OrderStatus
	settlements := 0
	for _, e := range outboxEvents(t, db) {
		types = append(types, e.Type)
		from = append(from, e.From)
		if e.Type == flashsale.EventOrderSettled {
			settlements++
			if !e.Refunded || e.Status != flashsale.OrderCancelled {
				t.Errorf("settled event = %+v, want refunded and CANCELLED", e)
			}
		}
	}
	wantTypes := []string{flashsale.EventOrderPlaced, flashsale.EventOrderPaid, flashsale.EventOrderCancelled, flashsale.EventOrderSettled}
	wantFrom := []flashsale.OrderStatus{"", flashsale.OrderPending, flashsale.OrderPaid, ""}
	if len(types) != len(wantTypes) || settlements != 1 {
		t.Fatalf("events = %v, want %v", types, wantTypes)
	}
	for i := range types {
		if types[i] != wantTypes[i] || from[i] != wantFrom[i] {
			t.Errorf("event %d = %s from %q, want %s from %q", i, types[i], from[i], wantTypes[i], wantFrom[i])
		}
	}
}

// A cancel names the status it left in its event, also when it shares a batch with other
// moves, so the stats can tell a paid order's cancel from a pending one's.
func TestCancelEventsSayWhichStatusTheyLeft(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 1, postgres.Options{})
	ctx := context.Background()
	orders := postgres.NewOrderStore(db)
	user := newBuyer(t, db)
	want := map[flashsale.OrderID]flashsale.OrderStatus{}
	for i := range 20 {
		o := &flashsale.Order{ID: flashsale.NewOrderID(user), UserID: user, ProductID: flashsale.NewProductID(3), Quantity: 1, TotalCents: 100, IdempotencyKey: testenv.Name()}
		if err := orders.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
		want[o.ID] = flashsale.OrderPending
		if i%2 == 0 {
			if _, err := orders.TransitionOrder(ctx, o.ID, []flashsale.OrderStatus{flashsale.OrderPending}, flashsale.OrderPaid); err != nil {
				t.Fatal(err)
			}
			want[o.ID] = flashsale.OrderPaid
		}
	}
	outboxEvents(t, db) // not these
	var wg sync.WaitGroup
	for id := range want {
		wg.Go(func() { // concurrent, so that moves share batches
			if _, err := orders.TransitionOrder(ctx, id, []flashsale.OrderStatus{flashsale.OrderPending, flashsale.OrderPaid}, flashsale.OrderCancelled); err != nil {
				t.Errorf("cancel: %v", err)
			}
		})
	}
	wg.Wait()
	events := outboxEvents(t, db)
	if len(events) != len(want) {
		t.Fatalf("cancel events = %d, want %d", len(events), len(want))
	}
	for _, e := range events {
		if e.Type != flashsale.EventOrderCancelled || e.From != want[e.OrderID] {
			t.Errorf("event of order %s = %s from %q, want %s from %q", e.OrderID, e.Type, e.From, flashsale.EventOrderCancelled, want[e.OrderID])
		}
	}
}

// The stats of a sale tell the truth about refunds: a paid order that is cancelled leaves
// paidOrders, and a refunded settlement counts in refundedOrders, once however often its
// event arrives.
func TestStatsCountCancelsOfPaidOrdersAndRefunds(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 2, postgres.Options{})
	ctx := context.Background()
	stats := postgres.NewStatsStore(db)
	sale := flashsale.NewSaleID(7)
	at := time.Now().UTC()
	ev := func(typ string, order flashsale.OrderID, status, from flashsale.OrderStatus, refunded bool) flashsale.OrderEvent {
		e := flashsale.NewOrderEvent(typ, &flashsale.Order{ID: order, UserID: flashsale.NewUserID(1), SaleID: sale, Quantity: 1, TotalCents: 900, Status: status, UpdatedAt: at})
		e.From, e.Refunded = from, refunded
		return e
	}
	paidThenCancelled, lateCharge, unpaid, kept := flashsale.OrderID(1), flashsale.OrderID(2), flashsale.OrderID(3), flashsale.OrderID(4)
	events := []flashsale.OrderEvent{
		ev(flashsale.EventOrderPlaced, paidThenCancelled, flashsale.OrderPending, "", false),
		ev(flashsale.EventOrderPaid, paidThenCancelled, flashsale.OrderPaid, flashsale.OrderPending, false),
		ev(flashsale.EventOrderCancelled, paidThenCancelled, flashsale.OrderCancelled, flashsale.OrderPaid, false),
		ev(flashsale.EventOrderSettled, paidThenCancelled, flashsale.OrderCancelled, "", true),
		ev(flashsale.EventOrderPlaced, lateCharge, flashsale.OrderPending, "", false),
		ev(flashsale.EventOrderExpired, lateCharge, flashsale.OrderExpired, flashsale.OrderPending, false),
		ev(flashsale.EventOrderSettled, lateCharge, flashsale.OrderExpired, "", true),
		ev(flashsale.EventOrderPlaced, unpaid, flashsale.OrderPending, "", false),
		ev(flashsale.EventOrderCancelled, unpaid, flashsale.OrderCancelled, flashsale.OrderPending, false),
		ev(flashsale.EventOrderSettled, unpaid, flashsale.OrderCancelled, "", false),
		ev(flashsale.EventOrderPlaced, kept, flashsale.OrderPending, "", false),
		ev(flashsale.EventOrderPaid, kept, flashsale.OrderPaid, flashsale.OrderPending, false),
	}
	for range 2 { // the second time, as a redelivery: nothing more
		if _, err := stats.CountMany(ctx, events); err != nil {
			t.Fatal(err)
		}
	}
	st, err := stats.SaleStats(ctx, sale)
	if err != nil {
		t.Fatal(err)
	}
	if st.Orders != 4 || st.PaidOrders != 1 || st.Cancelled != 3 || st.RefundedOrders != 2 || st.UnitsSold != 1 {
		t.Errorf("stats = orders %d, paid %d, cancelled %d, refunded %d, units %d; want 4, 1, 3, 2, 1",
			st.Orders, st.PaidOrders, st.Cancelled, st.RefundedOrders, st.UnitsSold)
	}
}

// Overdue settlements are asked for again once per grace period, and only for orders that
// ended and are still unsettled.
func TestRequestSettlementsAsksForOverdueOnesOnly(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 2, postgres.Options{})
	ctx := context.Background()
	orders := postgres.NewOrderStore(db)
	user := newBuyer(t, db)
	place := func() flashsale.OrderID {
		o := &flashsale.Order{ID: flashsale.NewOrderID(user), UserID: user, ProductID: flashsale.NewProductID(3), Quantity: 1, TotalCents: 100, IdempotencyKey: testenv.Name()}
		if err := orders.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
		return o.ID
	}
	move := func(id flashsale.OrderID, to flashsale.OrderStatus) {
		if _, err := orders.TransitionOrder(ctx, id, []flashsale.OrderStatus{flashsale.OrderPending}, to); err != nil {
			t.Fatal(err)
		}
	}
	cancelled, expired, settled, pending, paid := place(), place(), place(), place(), place()
	move(cancelled, flashsale.OrderCancelled)
	move(expired, flashsale.OrderExpired)
	move(settled, flashsale.OrderExpired)
	move(paid, flashsale.OrderPaid)
	if _, _, err := orders.SettleOrder(ctx, settled, false); err != nil {
		t.Fatal(err)
	}
	_ = pending
	outboxEvents(t, db) // not these

	if n, err := orders.RequestSettlements(ctx, time.Now().Add(-time.Hour), 100); err != nil || n != 0 {
		t.Errorf("requests for orders that ended within the grace period = %d, %v; want 0", n, err)
	}
	time.Sleep(100 * time.Millisecond)
	later := time.Now() // after the orders ended, before the requests below
	if n, err := orders.RequestSettlements(ctx, later, 100); err != nil || n != 2 {
		t.Errorf("requests = %d, %v; want 2 (the cancelled and the expired unsettled orders)", n, err)
	}
	if n, err := orders.RequestSettlements(ctx, later, 100); err != nil || n != 0 {
		t.Errorf("requests again within the grace period = %d, %v; want 0", n, err)
	}
	got := map[flashsale.OrderID]string{}
	for _, e := range outboxEvents(t, db) {
		got[e.OrderID] = e.Type
	}
	want := map[flashsale.OrderID]string{cancelled: flashsale.EventOrderSettlementDue, expired: flashsale.EventOrderSettlementDue}
	if len(got) != len(want) || got[cancelled] != want[cancelled] || got[expired] != want[expired] {
		t.Errorf("events = %v, want %v", got, want)
	}
	if n, err := orders.RequestSettlements(ctx, time.Now().Add(time.Hour), 100); err != nil || n != 2 {
		t.Errorf("requests a grace period later = %d, %v; want 2 again", n, err)
	}
}
