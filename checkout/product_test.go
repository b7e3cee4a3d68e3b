package checkout_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/checkout"
)

// productPoolQuantity reads the quantity a product's pool in Redis sells.
func (h *harness) productPoolQuantity(p *flashsale.Product) int {
	h.t.Helper()
	q, err := h.redis.HGet(context.Background(), h.prefix+"{"+string(flashsale.ProductPool(p.ID))+"}:meta", "quantity").Int()
	if err != nil {
		h.t.Fatalf("read pool quantity: %v", err)
	}
	return q
}

// assertProductInStep checks that PostgreSQL's stock and the pool's quantity agree, and that
// remaining + held = quantity.
func (h *harness) assertProductInStep(p *flashsale.Product, want int) {
	h.t.Helper()
	ctx := context.Background()
	row, err := h.products.FindProductByID(ctx, p.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	pool := flashsale.ProductPool(p.ID)
	remaining, err := h.inv.Remaining(ctx, pool)
	if err != nil {
		h.t.Fatal(err)
	}
	units, _ := h.held(pool)
	if row.Stock != want || h.productPoolQuantity(p) != want || remaining+units != want {
		h.t.Errorf("PostgreSQL stock %d, pool quantity %d, remaining %d + held %d; want all to make %d",
			row.Stock, h.productPoolQuantity(p), remaining, units, want)
	}
}

// A refused update changes neither side: not the row, not the pool.
func TestRefusedProductUpdateLeavesRedisAndPostgreSQLEqual(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, "")
	ctx := context.Background()
	p := &flashsale.Product{Name: "Lamp", PriceCents: 1200, Stock: 10}
	if err := h.svc.CreateProduct(ctx, p); err != nil {
		t.Fatal(err)
	}
	for i, v := range h.buyers(6) {
		if _, err := h.svc.PlaceOrder(ctx, v, p.ID, 1, fmt.Sprint("k", i)); err != nil {
			t.Fatal(err)
		}
	}
	blank, five, eight := "  ", 5, 8
	tests := []struct {
		name string
		u    flashsale.ProductUpdate
		code string
	}{
		{"invalid row with a new stock", flashsale.ProductUpdate{Name: &blank, Stock: &eight}, flashsale.EINVALID},
		{"stock below the units held", flashsale.ProductUpdate{Stock: &five}, flashsale.ECONFLICT},
	}
	for _, tt := range tests {
		_, err := h.svc.UpdateProduct(ctx, p.ID, tt.u)
		if got := flashsale.ErrorCode(err); got != tt.code {
			t.Errorf("%s: code %q (%v); want %q", tt.name, got, err, tt.code)
		}
		h.assertProductInStep(p, 10)
	}
	if _, err := h.svc.UpdateProduct(ctx, p.ID, flashsale.ProductUpdate{Stock: &eight}); err != nil {
		t.Fatalf("valid update: %v", err)
	}
	h.assertProductInStep(p, 8)
}

// Drift injected between PostgreSQL and the pool, and inside the pool, is repaired by
// reconciliation and counted by kind.
func TestReconcileRepairsQuantityDrift(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, "")
	ctx := context.Background()
	p := &flashsale.Product{Name: "Lamp", PriceCents: 1200, Stock: 10}
	if err := h.svc.CreateProduct(ctx, p); err != nil {
		t.Fatal(err)
	}
	vs := h.buyers(3)
	for i, v := range vs {
		if _, err := h.svc.PlaceOrder(ctx, v, p.ID, 1, fmt.Sprint("k", i)); err != nil {
			t.Fatal(err)
		}
	}
	// A crash between the pool's change and the row's commit: the row says 12, the pool 10.
	twelve := 12
	if _, err := h.products.UpdateProduct(ctx, p.ID, flashsale.ProductUpdate{Stock: &twelve}, nil); err != nil {
		t.Fatal(err)
	}
	// And the pool disagrees with itself: a wrong stock and a wrong buyer's count.
	base := h.prefix + "{" + string(flashsale.ProductPool(p.ID)) + "}:"
	if err := h.redis.Set(ctx, base+"stock", 99, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := h.redis.HSet(ctx, base+"bought", fmt.Sprint(int64(vs[0].UserID)), 7).Err(); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	h.assertProductInStep(p, 12)
	for _, kind := range []string{checkout.RepairQuantity, checkout.RepairStock, checkout.RepairBuyers} {
		if got := h.repaired(kind); got != 1 {
			t.Errorf("%s repairs = %d; want 1", kind, got)
		}
	}
	// Repaired once, it stays repaired: a second pass finds nothing to do.
	if err := h.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	for _, kind := range checkout.RepairKinds {
		want := map[string]int{checkout.RepairQuantity: 1, checkout.RepairStock: 1, checkout.RepairBuyers: 1}[kind]
		if got := h.repaired(kind); got != want {
			t.Errorf("after a second pass, %s repairs = %d; want %d", kind, got, want)
		}
	}
}

// Reconciliation that meets a product update in flight (the pool already changed, the row
// not yet committed) waits for it, rather than setting the pool back to the old stock.
func TestReconcileWaitsForAProductUpdateInFlight(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, "")
	ctx := context.Background()
	p := &flashsale.Product{Name: "Lamp", PriceCents: 1200, Stock: 10}
	if err := h.svc.CreateProduct(ctx, p); err != nil {
		t.Fatal(err)
	}
	inFlight, commit := make(chan struct{}), make(chan struct{})
	updated := make(chan error, 1)
	go func() {
		twenty := 20
		_, err := h.products.UpdateProduct(ctx, p.ID, flashsale.ProductUpdate{Stock: &twenty},
			func(ctx context.Context, p *flashsale.Product) error {
				if _, err := h.inv.SetQuantity(ctx, flashsale.ProductPool(p.ID), p.Stock); err != nil {
					return err
				}
				close(inFlight)
				<-commit
				return nil
			})
		updated <- err
	}()
	<-inFlight
	reconciled := make(chan error, 1)
	go func() { reconciled <- h.svc.Reconcile(ctx) }()
	time.Sleep(200 * time.Millisecond) // time enough to set the pool back, if it did not wait
	close(commit)
	if err := <-updated; err != nil {
		t.Fatalf("update: %v", err)
	}
	if err := <-reconciled; err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	h.assertProductInStep(p, 20)
	if got := h.repaired(checkout.RepairQuantity); got != 0 {
		t.Errorf("quantity repairs = %d; want 0 (nothing drifted)", got)
	}
}
