package checkout_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
)

// A FLUSHALL in the middle of a sale loses every pool; buyers keep coming while it is
// rebuilt from PostgreSQL, and in the end every unit is sold once and stock is conserved.
func TestFlushAllMidSaleThenReconcile(t *testing.T) {
	t.Parallel()
	url, _ := testenv.PrivateRedis(t)
	opts, _ := goredis.ParseURL(url)
	client := goredis.NewClient(opts)
	t.Cleanup(func() { client.Close() })
	h := newHarness(t, client, "")
	const quantity = 60
	vs := h.buyers(120)
	sale := h.sale(quantity, 1)
	ctx := context.Background()

	first := map[flashsale.UserID]flashsale.OrderID{}
	for i, v := range vs[:30] {
		o, err := h.svc.PlaceFlashSaleOrder(ctx, v, sale.ID, 1, fmt.Sprint("k", i))
		if err != nil {
			t.Fatalf("order before the flush: %v", err)
		}
		first[v.UserID] = o.ID
	}
	if err := client.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}

	var sold atomic.Int64
	var wg sync.WaitGroup
	for i, v := range vs {
		wg.Go(func() {
			o, err := h.svc.PlaceFlashSaleOrder(ctx, v, sale.ID, 1, fmt.Sprint("k", i))
			switch {
			case err == nil && i < 30:
				// The same key after the flush still finds the same order.
				if o.ID != first[v.UserID] {
					t.Errorf("buyer %d: retry after the flush got order %s, want %s", i, o.ID, first[v.UserID])
				}
			case err == nil:
				sold.Add(1)
			case flashsale.ErrorCode(err) != flashsale.ESOLDOUT:
				t.Errorf("buyer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if err := h.svc.Reconcile(ctx); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if got, want := sold.Load(), int64(quantity-30); got != want {
		t.Errorf("sold after the flush = %d, want %d", got, want)
	}
	h.assertConserved(sale)
}

// A process that dies between taking the units and writing the order leaves a hold with no
// order; reconciliation returns it once it is older than the grace period, and not before.
func TestCrashBetweenReservationAndInsertLosesNoUnit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, "")
	v := h.buyers(1)[0]
	sale := h.sale(5, 5)
	ctx := context.Background()
	pool := flashsale.SalePool(sale.ID)

	// What the dead process did: the reservation, and nothing after it.
	orphan := flashsale.Hold{OrderID: flashsale.NewOrderID(v.UserID), UserID: v.UserID, Quantity: 2, IdempotencyKey: "lost", At: time.Now()}
	if _, err := h.inv.Reserve(ctx, pool, orphan); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.PlaceFlashSaleOrder(ctx, v, sale.ID, 1, "kept"); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.inv.Remaining(ctx, pool); got != 2 {
		t.Errorf("remaining within the grace period = %d, want 2 (the orphan may still be committing)", got)
	}
	h.clock.offset = testConfig.OrphanGrace + time.Second
	if err := h.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.inv.Remaining(ctx, pool); got != 4 {
		t.Errorf("remaining after reconciliation = %d, want 4", got)
	}
	// The dead request's key was forgotten with its hold: the buyer's retry buys anew.
	o, err := h.svc.PlaceFlashSaleOrder(ctx, v, sale.ID, 1, "lost")
	if err != nil || o.ID == orphan.OrderID {
		t.Errorf("retry of the lost key: %v, %v; want a new order", o, err)
	}
	h.assertConserved(sale)
}

func TestCancelReleasesExactlyOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, "")
	vs := h.buyers(2)
	sale := h.sale(10, 3)
	ctx := context.Background()
	o, err := h.svc.PlaceFlashSaleOrder(ctx, vs[0], sale.ID, 3, "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Cancel(ctx, vs[1], o.ID); flashsale.ErrorCode(err) != flashsale.ENOTFOUND {
		t.Errorf("someone else's cancel: err = %v, want NOT_FOUND", err)
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, err := h.svc.Cancel(ctx, vs[0], o.ID)
			switch flashsale.ErrorCode(err) {
			case "":
				ok.Add(1)
			case flashsale.ECONFLICT:
			default:
				t.Errorf("cancel: %v", err)
			}
		})
	}
	wg.Wait()
	if got := ok.Load(); got != 1 {
		t.Errorf("successful cancels = %d, want 1", got)
	}
	if got, _ := h.inv.Remaining(ctx, flashsale.SalePool(sale.ID)); got != 10 {
		t.Errorf("remaining = %d, want 10", got)
	}
	// The buyer's per-user allowance came back with the units.
	if _, err := h.svc.PlaceFlashSaleOrder(ctx, vs[0], sale.ID, 3, "k2"); err != nil {
		t.Errorf("order after cancel: %v", err)
	}
	h.assertConserved(sale)
}

// Expiry and a racing cancel: exactly one of them moves the order, and its units come back
// once, however many sweepers run.
func TestExpiryReleasesExactlyOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, "")
	vs := h.buyers(10)
	sale := h.sale(20, 2)
	ctx := context.Background()
	var placed []*flashsale.Order
	for i, v := range vs {
		o, err := h.svc.PlaceFlashSaleOrder(ctx, v, sale.ID, 2, fmt.Sprint("k", i))
		if err != nil {
			t.Fatal(err)
		}
		placed = append(placed, o)
	}
	if _, err := h.svc.Transition(ctx, placed[0].ID, []flashsale.OrderStatus{flashsale.OrderPending}, flashsale.OrderPaid); err != nil {
		t.Fatal(err)
	}
	h.clock.offset = testConfig.ReservationTTL + time.Second

	var expired, cancelled atomic.Int64
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			n, err := h.svc.ExpireStale(ctx, 100)
			if err != nil {
				t.Errorf("expire: %v", err)
			}
			expired.Add(int64(n))
		})
	}
	wg.Go(func() {
		if _, err := h.svc.Cancel(ctx, vs[1], placed[1].ID); err == nil {
			cancelled.Add(1)
		}
	})
	wg.Wait()
	if got, want := expired.Load()+cancelled.Load(), int64(9); got != want {
		t.Errorf("expired %d + cancelled %d = %d, want %d (every unpaid order once)", expired.Load(), cancelled.Load(), got, want)
	}
	if got, _ := h.inv.Remaining(ctx, flashsale.SalePool(sale.ID)); got != 18 {
		t.Errorf("remaining = %d, want 18 (only the paid order keeps its units)", got)
	}
	paid, err := h.orders.FindOrderByID(ctx, placed[0].ID)
	if err != nil || paid.Status != flashsale.OrderPaid {
		t.Errorf("paid order = %+v, %v; want it still PAID", paid, err)
	}
	h.assertConserved(sale)
}

// A release that did not land (Redis down just then) is repaired by reconciliation: the hold
// of an order that no longer holds stock is returned.
func TestReconcileReleasesHoldsOfFinishedOrders(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, "")
	v := h.buyers(1)[0]
	sale := h.sale(4, 4)
	ctx := context.Background()
	o, err := h.svc.PlaceFlashSaleOrder(ctx, v, sale.ID, 4, "k")
	if err != nil {
		t.Fatal(err)
	}
	// Cancel in PostgreSQL only, as if the release had failed.
	if _, err := h.orders.TransitionOrder(ctx, o.ID, []flashsale.OrderStatus{flashsale.OrderPending}, flashsale.OrderCancelled); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.inv.Remaining(ctx, flashsale.SalePool(sale.ID)); got != 0 {
		t.Fatalf("remaining before reconcile = %d, want 0", got)
	}
	if err := h.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	h.assertConserved(sale)
}
