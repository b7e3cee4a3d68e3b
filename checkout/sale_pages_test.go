package checkout_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/flashsale/flashsale"
)

// Running sales are told ACTIVE or SOLD_OUT by their stock, which the store cannot see: a
// page of one status reads on past store pages of the other until it is full and knows
// whether more follow. The other statuses follow the service's clock.
func TestSalesPageFiltersByStatus(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, "")
	ctx := context.Background()
	buyer := h.buyers(1)[0]
	soldOut := func(n int) []flashsale.SaleID {
		var ids []flashsale.SaleID
		for range n {
			s := h.sale(1, 1)
			if _, err := h.svc.PlaceFlashSaleOrder(ctx, buyer, s.ID, 1, s.ID.String()); err != nil {
				t.Fatalf("sell out %s: %v", s.ID, err)
			}
			ids = append(ids, s.ID)
		}
		return ids
	}
	// More sold-out sales between two active ones than one store page holds.
	var active, gone []flashsale.SaleID
	active = append(active, h.sale(5, 1).ID)
	gone = append(gone, soldOut(2*flashsale.DefaultPageSize+1)...)
	active = append(active, h.sale(5, 1).ID)
	gone = append(gone, soldOut(3)...)
	active = append(active, h.sale(5, 1).ID)
	all := slices.Concat(active, gone)
	slices.Sort(all) // ids are in creation order

	pageThrough := func(status flashsale.SaleStatus, first int) []flashsale.SaleID {
		t.Helper()
		var got []flashsale.SaleID
		var after flashsale.SaleID
		for page := 0; ; page++ {
			if page > len(all) {
				t.Fatalf("%s first=%d: still paging after %d pages", status, first, page)
			}
			sales, more, err := h.svc.SalesPage(ctx, first, after, &status)
			if err != nil {
				t.Fatalf("%s first=%d: %v", status, first, err)
			}
			if len(sales) > first || (more && len(sales) < first) {
				t.Fatalf("%s first=%d page %d: %d sales with more=%v", status, first, page, len(sales), more)
			}
			for _, s := range sales {
				got = append(got, s.ID)
			}
			if !more {
				return got
			}
			after = sales[len(sales)-1].ID
		}
	}
	for _, tc := range []struct {
		status flashsale.SaleStatus
		want   []flashsale.SaleID
	}{
		{flashsale.SaleActive, active},
		{flashsale.SaleSoldOut, gone},
		{flashsale.SaleScheduled, nil},
		{flashsale.SaleEnded, nil},
	} {
		for _, first := range []int{1, 2, len(tc.want), 100} {
			if first == 0 {
				continue
			}
			if got := pageThrough(tc.status, first); !slices.Equal(got, tc.want) {
				t.Errorf("%s first=%d:\n got %v\nwant %v", tc.status, first, got, tc.want)
			}
		}
	}

	// Two hours on, by the service's clock, every sale has ended.
	h.clock.offset = 2 * time.Hour
	if got := pageThrough(flashsale.SaleEnded, 10); !slices.Equal(got, all) {
		t.Errorf("ENDED two hours on:\n got %v\nwant %v", got, all)
	}
	if got := pageThrough(flashsale.SaleActive, 10); len(got) != 0 {
		t.Errorf("ACTIVE two hours on: got %v, want none", got)
	}
	h.clock.offset = -2 * time.Hour
	if got := pageThrough(flashsale.SaleScheduled, 10); !slices.Equal(got, all) {
		t.Errorf("SCHEDULED two hours before:\n got %v\nwant %v", got, all)
	}
}
