package checkout

import (
	"context"

	"github.com/flashsale/flashsale"
)

// SalesPage returns up to first sales after the cursor (0: from the first), in creation
// order, with the status if one is given, and whether more follow. Unlike ListSales it
// covers every sale, however long ago it ended. BAD_USER_INPUT.
//
// The store selects SCHEDULED and ENDED sales by their window alone. ACTIVE and SOLD_OUT
// sales share a window and differ by their live stock, so for those the store's pages are
// read on, and each running sale's status taken, until one sale more than the page holds
// is found or the sales run out: hasNextPage is then exact.
func (s *Service) SalesPage(ctx context.Context, first int, after flashsale.SaleID, status *flashsale.SaleStatus) ([]*flashsale.FlashSale, bool, error) {
	now := s.now()
	if status == nil || *status == flashsale.SaleScheduled || *status == flashsale.SaleEnded {
		return s.sales.PageSales(ctx, first, after, status, now)
	}
	// A page of the running sales is read at a time; most are usually what was asked for.
	batch := max(first+1, flashsale.DefaultPageSize)
	var out []*flashsale.FlashSale
	for {
		running, more, err := s.sales.PageSales(ctx, batch, after, status, now)
		if err != nil {
			return nil, false, err
		}
		for _, sale := range running {
			n, err := s.SaleRemaining(ctx, sale)
			if err != nil {
				return nil, false, err
			}
			if sale.StatusAt(now, n) == *status {
				out = append(out, sale)
			}
			if len(out) > first {
				return out[:first], true, nil
			}
		}
		if !more {
			return out, false, nil
		}
		after = running[len(running)-1].ID
	}
}
