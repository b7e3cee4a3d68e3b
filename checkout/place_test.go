package checkout_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/checkout"
)

func TestConcurrentBuyersGetExactlyTheStock(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, "")
	const buyers, attempts, quantity, workers = 1000, 5000, 100, 256
	vs := h.buyers(buyers)
	sale := h.sale(quantity, 1)

	var mu sync.Mutex
	winners := map[flashsale.UserID]int{}
	codes := map[string]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= attempts {
					return
				}
				v := vs[i%buyers]
				o, err := h.svc.PlaceFlashSaleOrder(context.Background(), v, sale.ID, 1, fmt.Sprintf("attempt-%d", i))
				mu.Lock()
				if err == nil {
					winners[o.UserID]++
				} else {
					codes[flashsale.ErrorCode(err)]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	if got, want := len(winners), quantity; got != want {
		t.Errorf("distinct buyers with an order = %d, want %d", got, want)
	}
	for u, n := range winners {
		if n != 1 {
			t.Errorf("buyer %s got %d orders, want 1 (per-user limit)", u, n)
		}
	}
	for code, n := range codes {
		if code != flashsale.ESOLDOUT && code != flashsale.ELIMITEXCEEDED {
			t.Errorf("%d attempts failed with %s, want only SOLD_OUT or LIMIT_EXCEEDED", n, code)
		}
	}
	units, orders := h.held(flashsale.SalePool(sale.ID))
	if units != quantity || orders != quantity {
		t.Errorf("PostgreSQL holds %d orders for %d units, want %d and %d", orders, units, quantity, quantity)
	}
	h.assertConserved(sale)
}

func TestSameIdempotencyKeyGivesOneOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, "")
	v := h.buyers(1)[0]
	sale := h.sale(10, 5)

	ids := make([]flashsale.OrderID, 50)
	errs := make([]error, 50)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			o, err := h.svc.PlaceFlashSaleOrder(context.Background(), v, sale.ID, 1, "the-same-key")
			if err == nil {
				ids[i] = o.ID
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil {
			t.Fatalf("attempt %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Errorf("attempt %d got order %s, want %s", i, ids[i], ids[0])
		}
	}
	if units, orders := h.held(flashsale.SalePool(sale.ID)); units != 1 || orders != 1 {
		t.Errorf("orders = %d holding %d units, want 1 and 1", orders, units)
	}
	h.assertConserved(sale)
}

func TestAskingForMoreThanIsLeftDoesNotMarkTheSaleSoldOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, "")
	buyers := h.buyers(3)
	sale := h.sale(4, 4)
	ctx := context.Background()
	if _, err := h.svc.PlaceFlashSaleOrder(ctx, buyers[2], sale.ID, 2, "first two"); err != nil {
		t.Fatalf("2 of 4: %v", err)
	}
	_, err := h.svc.PlaceFlashSaleOrder(ctx, buyers[0], sale.ID, 3, "three")
	if flashsale.ErrorCode(err) != flashsale.ESOLDOUT || errors.Is(err, flashsale.ErrSoldOut) {
		t.Fatalf("3 of 2: got %v; want SOLD_OUT, but not sold out", err)
	}
	if h.svc.RefusesFromMemory(sale.ID, 1, "one") || h.svc.RemembersASellOut() {
		t.Error("after a refusal of 3 with 2 left, the checkout remembers a sell-out")
	}
	if _, err := h.svc.PlaceFlashSaleOrder(ctx, buyers[1], sale.ID, 2, "two"); err != nil {
		t.Fatalf("2 of the 2 left: %v", err)
	}
	_, err = h.svc.PlaceFlashSaleOrder(ctx, buyers[0], sale.ID, 1, "one")
	if !errors.Is(err, flashsale.ErrSoldOut) || !h.svc.RefusesFromMemory(sale.ID, 1, "another") || !h.svc.RemembersASellOut() {
		t.Errorf("once none is left: got %v, remembered %v; want sold out, remembered",
			err, h.svc.RefusesFromMemory(sale.ID, 1, "another"))
	}
	h.assertConserved(sale)
}

func TestPlacedOrdersReportTheirSteps(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, "")
	buyers := h.buyers(3)
	sale := h.sale(2, 1)
	ctx := context.Background()
	for i, v := range buyers[:2] {
		if _, err := h.svc.PlaceFlashSaleOrder(ctx, v, sale.ID, 1, fmt.Sprint("key-", i)); err != nil {
			t.Fatalf("order %d: %v", i, err)
		}
	}
	// Neither a retry of a placed order nor a refusal places anything.
	if _, err := h.svc.PlaceFlashSaleOrder(ctx, buyers[0], sale.ID, 1, "key-0"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if _, err := h.svc.PlaceFlashSaleOrder(ctx, buyers[2], sale.ID, 1, "key-2"); flashsale.ErrorCode(err) != flashsale.ESOLDOUT {
		t.Fatalf("third buyer: got %v; want SOLD_OUT", err)
	}
	for _, step := range []string{checkout.StepReserve, checkout.StepRecord, checkout.StepWrite} {
		got := h.observed(step)
		if len(got) != 2 {
			t.Errorf("%s observed %d times; want once for each of the 2 placed orders", step, len(got))
		}
		for _, d := range got {
			if d <= 0 || d > testConfig.WriteTimeout {
				t.Errorf("%s took %v; want a duration within the write timeout", step, d)
			}
		}
	}
}

// The window is judged by Redis's clock, the one every replica shares, not the process's: a
// process whose clock runs hours ahead still finds a sale not started, and one whose clock
// is hours behind finds an ended sale ended.
func TestOrderOutsideTheWindowIsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, "")
	v := h.buyers(1)[0]
	now := time.Now()
	later := h.saleAt(5, 1, now.Add(time.Hour), now.Add(2*time.Hour))
	ending := h.saleAt(5, 1, now.Add(-time.Minute), now.Add(300*time.Millisecond))
	time.Sleep(time.Until(ending.EndsAt) + 50*time.Millisecond)
	tests := []struct {
		name   string
		sale   *flashsale.FlashSale
		offset time.Duration // of this process's clock
		want   string        // in the message
	}{
		{"before the start", later, 0, "not started"},
		{"before the start, by a clock ahead", later, 3 * time.Hour, "not started"},
		{"after the end", ending, 0, "ended"},
		{"after the end, by a clock behind", ending, -time.Hour, "ended"},
	}
	for _, tt := range tests {
		h.clock.offset = tt.offset
		_, err := h.svc.PlaceFlashSaleOrder(context.Background(), v, tt.sale.ID, 1, "k-"+tt.name)
		if got, want := flashsale.ErrorCode(err), flashsale.ESALENOTACTIVE; got != want || !strings.Contains(flashsale.ErrorMessage(err), tt.want) {
			t.Errorf("%s: code %q (%v); want %q saying %q", tt.name, got, err, want, tt.want)
		}
	}
}

func TestInvalidOrderRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, "")
	v := h.buyers(1)[0]
	sale := h.sale(5, 1)
	tests := []struct {
		name     string
		sale     flashsale.SaleID
		quantity int
		key      string
		want     string
	}{
		{"zero quantity", sale.ID, 0, "k", flashsale.EINVALID},
		{"negative quantity", sale.ID, -3, "k", flashsale.EINVALID},
		{"empty key", sale.ID, 1, "  ", flashsale.EINVALID},
		{"huge key", sale.ID, 1, string(make([]byte, 500)), flashsale.EINVALID},
		{"unknown sale", flashsale.NewSaleID(3), 1, "k", flashsale.ENOTFOUND},
		{"above the per-user limit", sale.ID, 2, "k2", flashsale.ELIMITEXCEEDED},
		{"more than the stock", sale.ID, 6, "k3", flashsale.ELIMITEXCEEDED},
	}
	for _, tt := range tests {
		_, err := h.svc.PlaceFlashSaleOrder(context.Background(), v, tt.sale, tt.quantity, tt.key)
		if got := flashsale.ErrorCode(err); got != tt.want {
			t.Errorf("%s: code = %q, want %q (err %v)", tt.name, got, tt.want, err)
		}
	}
	h.assertConserved(sale)
}

func TestRegularOrdersSellProductStockOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, "")
	vs := h.buyers(40)
	p := &flashsale.Product{Name: "Mug", PriceCents: 1200, Stock: 25}
	if err := h.products.CreateProduct(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i, v := range vs {
		wg.Go(func() {
			o, err := h.svc.PlaceOrder(context.Background(), v, p.ID, 1, fmt.Sprint("k", i))
			if err == nil {
				ok.Add(1)
				if o.TotalCents != 1200 {
					t.Errorf("total = %d, want 1200", o.TotalCents)
				}
			} else if flashsale.ErrorCode(err) != flashsale.ESOLDOUT {
				t.Errorf("buyer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if got, want := ok.Load(), int64(25); got != want {
		t.Errorf("orders = %d, want %d", got, want)
	}
	remaining, err := h.svc.ProductRemaining(context.Background(), p)
	if err != nil || remaining != 0 {
		t.Errorf("remaining = %d, %v; want 0", remaining, err)
	}
	// Raising the stock sells again; lowering it below what is held is refused.
	more := 30
	if _, err := h.svc.UpdateProduct(context.Background(), p.ID, flashsale.ProductUpdate{Stock: &more}); err != nil {
		t.Fatalf("raise stock: %v", err)
	}
	less := 10
	if _, err := h.svc.UpdateProduct(context.Background(), p.ID, flashsale.ProductUpdate{Stock: &less}); flashsale.ErrorCode(err) != flashsale.ECONFLICT {
		t.Errorf("lower stock below held: err = %v, want CONFLICT", err)
	}
}

// Every attempt at a sale counts in its stats, those refused from memory after the sell-out
// (here, and by the API's sold-out fast path) as well as those the pool answered.
func TestAttemptsCountRefusalsFromMemory(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, "")
	buyers := h.buyers(12)
	sale := h.sale(2, 1)
	ctx := context.Background()
	sent := 0
	for i, v := range buyers {
		for j := range 3 {
			_, err := h.svc.PlaceFlashSaleOrder(ctx, v, sale.ID, 1, fmt.Sprintf("k%d-%d", i, j))
			sent++
			if err != nil && flashsale.ErrorCode(err) != flashsale.ESOLDOUT && flashsale.ErrorCode(err) != flashsale.ELIMITEXCEEDED {
				t.Fatalf("attempt: %v", err)
			}
		}
	}
	for range 5 { // what the fast path answered, after asking RefusesFromMemory
		h.svc.CountRefusedFromMemory(sale.ID)
		sent++
	}
	byPool, err := h.inv.Attempts(ctx, flashsale.SalePool(sale.ID))
	if err != nil {
		t.Fatal(err)
	}
	if byPool >= sent {
		t.Fatalf("the pool counted %d of %d attempts by itself; the test needs refusals from memory", byPool, sent)
	}
	st, err := h.svc.SaleStats(ctx, sale.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Attempts != sent {
		t.Errorf("stats attempts = %d, want %d (the pool counted %d itself)", st.Attempts, sent, byPool)
	}
}
