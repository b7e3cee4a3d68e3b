package redis

import (
	"context"

	"github.com/flashsale/flashsale"
)

// UpdateSale writes through and drops the entry, here and in every process's local copies,
// once the write committed: a sale's terms change when staff change, end or cancel it.
func (s *SaleCache) UpdateSale(ctx context.Context, id flashsale.SaleID, change, follow func(context.Context, *flashsale.FlashSale) error) (*flashsale.FlashSale, error) {
	sale, err := s.SaleStore.UpdateSale(ctx, id, change, follow)
	if err == nil {
		s.c.invalidate(ctx, id)
	}
	return sale, err
}
