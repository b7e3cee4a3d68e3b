package stockfeed

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
)

// newFake returns a shaper over a feed the test writes to (stock_test.go's fakes).
func newFake() (*Stock, *fakeFeed) {
	feed := newFakeFeed()
	return NewStock(fakeSource{feed}, 1000), feed
}

// same is a reload that finds the sale unchanged.
func same(sale *flashsale.FlashSale) func(context.Context) (*flashsale.FlashSale, error) {
	return func(context.Context) (*flashsale.FlashSale, error) { return sale, nil }
}

// receive returns the next update, or nil once the stream has ended.
func receive(t *testing.T, ch <-chan *flashsale.StockUpdate) *flashsale.StockUpdate {
	t.Helper()
	select {
	case u := <-ch:
		return u
	case <-time.After(10 * time.Second):
		t.Fatal("no update within 10s")
		return nil
	}
}

func wantUpdate(t *testing.T, ch <-chan *flashsale.StockUpdate, sale *flashsale.FlashSale, remaining int, status flashsale.SaleStatus) {
	t.Helper()
	u := receive(t, ch)
	if u == nil {
		t.Fatalf("the stream ended, want remaining %d %s", remaining, status)
	}
	if u.Sale != sale || u.Remaining != remaining || u.Status != status {
		t.Fatalf("got sale %v remaining %d %s, want sale %v remaining %d %s", u.Sale, u.Remaining, u.Status, sale, remaining, status)
	}
}

func wantEnd(t *testing.T, ch <-chan *flashsale.StockUpdate, feed *fakeFeed) {
	t.Helper()
	if u := receive(t, ch); u != nil {
		t.Fatalf("got an update after the last one: remaining %d %s", u.Remaining, u.Status)
	}
	select {
	case <-feed.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the feed was not closed after the stream ended")
	}
}

// TestWatchSaleStartsThenSellsOut: a scheduled sale's stream says SCHEDULED, then ACTIVE
// when the clock reaches the start with no stock change, then ends on SOLD_OUT.
func TestWatchSaleStartsThenSellsOut(t *testing.T) {
	t.Parallel()
	stock, feed := newFake()
	now := time.Now()
	sale := &flashsale.FlashSale{ID: 1, Quantity: 5, StartsAt: now.Add(300 * time.Millisecond), EndsAt: now.Add(time.Hour)}
	ch, err := stock.WatchSale(t.Context(), sale, current(5), same(sale))
	if err != nil {
		t.Fatal(err)
	}
	wantUpdate(t, ch, sale, 5, flashsale.SaleScheduled)
	wantUpdate(t, ch, sale, 5, flashsale.SaleActive)
	feed.send(2)
	wantUpdate(t, ch, sale, 2, flashsale.SaleActive)
	feed.send(0)
	wantUpdate(t, ch, sale, 0, flashsale.SaleSoldOut)
	wantEnd(t, ch, feed)
}

// TestWatchSaleEnds: a running sale's stream ends on ENDED at its end, with the count it had.
func TestWatchSaleEnds(t *testing.T) {
	t.Parallel()
	stock, feed := newFake()
	now := time.Now()
	sale := &flashsale.FlashSale{ID: 2, Quantity: 5, StartsAt: now.Add(-time.Minute), EndsAt: now.Add(300 * time.Millisecond)}
	ch, err := stock.WatchSale(t.Context(), sale, current(4), same(sale))
	if err != nil {
		t.Fatal(err)
	}
	wantUpdate(t, ch, sale, 4, flashsale.SaleActive)
	wantUpdate(t, ch, sale, 4, flashsale.SaleEnded)
	wantEnd(t, ch, feed)
}

// TestWatchSaleOverAlready: a sale sold out or ended when watched sends its state once and
// ends.
func TestWatchSaleOverAlready(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tests := []struct {
		name      string
		sale      *flashsale.FlashSale
		remaining int
		want      flashsale.SaleStatus
	}{
		{"sold out", &flashsale.FlashSale{ID: 3, Quantity: 5, StartsAt: now.Add(-time.Minute), EndsAt: now.Add(time.Hour)}, 0, flashsale.SaleSoldOut},
		{"ended", &flashsale.FlashSale{ID: 4, Quantity: 5, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(-time.Minute)}, 3, flashsale.SaleEnded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stock, feed := newFake()
			ch, err := stock.WatchSale(t.Context(), tt.sale, current(tt.remaining), same(tt.sale))
			if err != nil {
				t.Fatal(err)
			}
			wantUpdate(t, ch, tt.sale, tt.remaining, tt.want)
			wantEnd(t, ch, feed)
		})
	}
}

// TestWatchProductNamesTheProduct: a product's updates carry its id and no sale.
func TestWatchProductNamesTheProduct(t *testing.T) {
	t.Parallel()
	stock, feed := newFake()
	ch, err := stock.WatchProduct(t.Context(), 7, current(9))
	if err != nil {
		t.Fatal(err)
	}
	feed.send(8)
	for _, want := range []int{9, 8} {
		u := receive(t, ch)
		if u == nil || u.Remaining != want || u.ProductID != 7 || u.Sale != nil || u.Status != "" {
			t.Fatalf("got %+v, want remaining %d of product 7, no sale", u, want)
		}
	}
}

// TestWatchSaleFollowsStaffChanges: a sale that staff end early (or cancel) shows ENDED
// within a recheck, with no change of its stock, and its stream ends.
func TestWatchSaleFollowsStaffChanges(t *testing.T) {
	t.Parallel()
	now := time.Now()
	running := &flashsale.FlashSale{ID: 5, Quantity: 5, StartsAt: now.Add(-time.Minute), EndsAt: now.Add(time.Hour)}
	for _, tc := range []struct {
		name   string
		change func(s *flashsale.FlashSale, now time.Time)
	}{
		{"ended early", func(s *flashsale.FlashSale, now time.Time) { s.EndsAt = now }},
		{"cancelled", func(s *flashsale.FlashSale, now time.Time) { s.CancelledAt = &now; s.EndsAt = now }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stock, feed := newFake()
			stock.recheck = 20 * time.Millisecond
			var latestSale atomic.Pointer[flashsale.FlashSale]
			latestSale.Store(running)
			reload := func(context.Context) (*flashsale.FlashSale, error) { return latestSale.Load(), nil }
			ch, err := stock.WatchSale(t.Context(), running, current(3), reload)
			if err != nil {
				t.Fatal(err)
			}
			wantUpdate(t, ch, running, 3, flashsale.SaleActive)
			changed := *running
			tc.change(&changed, time.Now())
			latestSale.Store(&changed)
			wantUpdate(t, ch, &changed, 3, flashsale.SaleEnded)
			wantEnd(t, ch, feed)
		})
	}
}
