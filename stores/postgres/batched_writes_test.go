package postgres_test

import (
	"context"
	"sync"
	"testing"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/postgres"
)

// Concurrent writes share statements (the combiner); these tests hold them to what one
// write at a time promised.

func TestConcurrentOrdersWithOneKeyWriteOneOrderAndOneEvent(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 2, postgres.Options{MaxConns: 4})
	ctx := context.Background()
	orders, outbox := postgres.NewOrderStore(db), postgres.NewOutbox(db)
	const buyers, copies = 60, 3
	var wg sync.WaitGroup
	created := make([][]error, buyers)
	for b := range buyers {
		user := newBuyer(t, db)
		created[b] = make([]error, copies)
		for c := range copies {
			wg.Go(func() {
				o := &flashsale.Order{ID: flashsale.NewOrderID(user), UserID: user, ProductID: flashsale.NewProductID(5),
					Quantity: 1, TotalCents: 100, IdempotencyKey: "same"}
				created[b][c] = orders.CreateOrder(ctx, o)
			})
		}
	}
	wg.Wait()
	for b, errs := range created {
		ok := 0
		for _, err := range errs {
			switch flashsale.ErrorCode(err) {
			case "":
				ok++
			case flashsale.ECONFLICT:
			default:
				t.Fatalf("buyer %d: unexpected error %v", b, err)
			}
		}
		if ok != 1 {
			t.Errorf("buyer %d: %d orders written with one key, want 1", b, ok)
		}
	}
	if n, err := outbox.Backlog(ctx, flashsale.ToRabbitMQ); err != nil || n != buyers {
		t.Errorf("events = %d, %v; want one per written order, %d", n, err, buyers)
	}
}

func TestRacingMovesOfOneOrderLetOneWinAndWriteItsEvent(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 2, postgres.Options{MaxConns: 4})
	ctx := context.Background()
	orders, outbox := postgres.NewOrderStore(db), postgres.NewOutbox(db)
	const n = 80
	ids := make([]flashsale.OrderID, n)
	for i := range ids {
		user := newBuyer(t, db)
		o := &flashsale.Order{ID: flashsale.NewOrderID(user), UserID: user, ProductID: flashsale.NewProductID(5),
			Quantity: 1, TotalCents: 100, IdempotencyKey: "k"}
		if err := orders.CreateOrder(ctx, o); err != nil {
			t.Fatal(err)
		}
		ids[i] = o.ID
	}
	pending := []flashsale.OrderStatus{flashsale.OrderPending}
	moves := []struct {
		from []flashsale.OrderStatus
		to   flashsale.OrderStatus
	}{
		{pending, flashsale.OrderPaid},
		{pending, flashsale.OrderExpired},
		{pending, flashsale.OrderPaid}, // a redelivered payment
	}
	won := make([][]flashsale.OrderStatus, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, id := range ids {
		for _, m := range moves {
			wg.Go(func() {
				o, err := orders.TransitionOrder(ctx, id, m.from, m.to)
				switch flashsale.ErrorCode(err) {
				case "":
					if o.Status != m.to || o.ID != id {
						t.Errorf("move %d to %s returned %s %s", id, m.to, o.ID, o.Status)
					}
					mu.Lock()
					won[i] = append(won[i], m.to)
					mu.Unlock()
				case flashsale.ECONFLICT:
				default:
					t.Errorf("move %d to %s: %v", id, m.to, err)
				}
			})
		}
	}
	wg.Wait()
	for i, w := range won {
		if len(w) != 1 {
			t.Errorf("order %d: moves that won = %v, want exactly one", ids[i], w)
			continue
		}
		o, err := orders.FindOrderByID(ctx, ids[i])
		if err != nil || o.Status != w[0] {
			t.Errorf("order %d is %v (%v), want %s", ids[i], o, err, w[0])
		}
	}
	// One placed event and one for the winning move, per order.
	if got, err := outbox.Backlog(ctx, flashsale.ToRabbitMQ); err != nil || got != 2*n {
		t.Errorf("events = %d, %v; want %d", got, err, 2*n)
	}
	if _, err := orders.TransitionOrder(ctx, flashsale.NewOrderID(flashsale.NewUserID(3)), pending, flashsale.OrderPaid); flashsale.ErrorCode(err) != flashsale.ENOTFOUND {
		t.Errorf("moving an unknown order: err = %v, want NOT_FOUND", err)
	}
}

func TestConcurrentChargesOfAnOrderAgreeOnOneOutcome(t *testing.T) {
	t.Parallel()
	db, _ := testenv.DB(t, 2, postgres.Options{MaxConns: 4})
	ctx := context.Background()
	ledger := postgres.NewChargeLedger(db)
	const n = 100
	type result struct {
		outcome string
		stored  bool
	}
	results := make([][2]result, n)
	var wg sync.WaitGroup
	for i := range n {
		order := flashsale.NewOrderID(flashsale.NewUserID(i % flashsale.Buckets))
		for c, outcome := range []string{"APPROVED", "DECLINED"} {
			wg.Go(func() {
				got, stored, err := ledger.RecordCharge(ctx, order, 100, outcome)
				if err != nil {
					t.Errorf("charge %d: %v", order, err)
				}
				results[i][c] = result{got, stored}
			})
		}
	}
	wg.Wait()
	for i, r := range results {
		if r[0].outcome != r[1].outcome || r[0].stored == r[1].stored {
			t.Errorf("order %d: charges = %+v, want one stored and both the same outcome", i, r)
		}
	}
	if got, err := ledger.CountCharges(ctx); err != nil || got != n {
		t.Errorf("charges = %d, %v; want %d", got, err, n)
	}
}
