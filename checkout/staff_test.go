package checkout_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/internal/testenv"
)

// A sale cancelled while buyers are buying ends with every order cancelled and every unit
// back, however the two interleave: orders written after the cancel read them are cancelled
// by reconciliation, and no buyer sees anything but an order, SALE_NOT_ACTIVE or a retry.
func TestCancelSaleWhileBuyersBuy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, "")
	ctx := context.Background()
	sale := h.sale(50, 1)
	buyers := h.buyers(40)
	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for i, b := range buyers {
		wg.Go(func() {
			<-start
			time.Sleep(time.Duration(i%8) * 3 * time.Millisecond)
			_, err := h.svc.PlaceFlashSaleOrder(ctx, b, sale.ID, 1, testenv.Name())
			switch flashsale.ErrorCode(err) {
			case "":
				mu.Lock()
				accepted++
				mu.Unlock()
			case flashsale.ESALENOTACTIVE, flashsale.EUNAVAILABLE:
			default:
				t.Errorf("buyer %d: %v; want an order, SALE_NOT_ACTIVE or UNAVAILABLE", i, err)
			}
		})
	}
	close(start)
	time.Sleep(10 * time.Millisecond)
	cancelled, err := h.svc.CancelSale(ctx, sale.ID)
	if err != nil {
		t.Fatalf("cancel the sale: %v", err)
	}
	wg.Wait()
	if err := h.svc.Reconcile(ctx); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	t.Logf("%d orders accepted around the cancel", accepted)

	pool := flashsale.SalePool(sale.ID)
	if units, orders := h.held(pool); units != 0 {
		t.Errorf("after the cancel and a reconciliation %d orders hold %d units; want none", orders, units)
	}
	if n, err := h.inv.Remaining(ctx, pool); err != nil || n != sale.Quantity {
		t.Errorf("remaining = %d, %v; want all %d back", n, err, sale.Quantity)
	}
	h.assertConserved(cancelled)
	if _, err := h.svc.PlaceFlashSaleOrder(ctx, buyers[0], sale.ID, 1, testenv.Name()); flashsale.ErrorCode(err) != flashsale.ESALENOTACTIVE {
		t.Errorf("an order after the cancel: %v; want SALE_NOT_ACTIVE", err)
	}
	if st, err := h.svc.SaleStatus(ctx, cancelled); err != nil || st != flashsale.SaleEnded {
		t.Errorf("status after the cancel = %s, %v; want ENDED", st, err)
	}
	if n := h.repaired("terms"); n != 0 {
		t.Errorf("following new terms counted %d repairs; want none", n)
	}
}

// An order written after its sale was cancelled (its units taken just before the pool
// closed) is cancelled by the next reconciliation.
func TestReconcileCancelsOrdersOfCancelledSale(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, "")
	ctx := context.Background()
	sale := h.sale(10, 2)
	buyer := h.buyers(1)[0]
	if _, err := h.svc.CancelSale(ctx, sale.ID); err != nil {
		t.Fatalf("cancel the sale: %v", err)
	}
	late := &flashsale.Order{ID: flashsale.NewOrderID(buyer.UserID), UserID: buyer.UserID, ProductID: sale.ProductID,
		SaleID: sale.ID, Quantity: 2, TotalCents: 1998, IdempotencyKey: testenv.Name()}
	if err := h.orders.CreateOrder(ctx, late); err != nil {
		t.Fatalf("write the late order: %v", err)
	}
	if err := h.svc.Reconcile(ctx); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	got, err := h.orders.FindOrderByID(ctx, late.ID)
	if err != nil || got.Status != flashsale.OrderCancelled {
		t.Fatalf("the late order is %v (%v); want CANCELLED", got, err)
	}
}
