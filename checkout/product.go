package checkout

import (
	"context"
	"errors"

	"github.com/flashsale/flashsale"
)

// UpdateProduct edits a product; a new stock count becomes the quantity of its regular pool,
// which refuses (CONFLICT) a count below the units that orders already hold. NOT_FOUND,
// BAD_USER_INPUT, CONFLICT.
func (s *Service) UpdateProduct(ctx context.Context, id flashsale.ProductID, u flashsale.ProductUpdate) (*flashsale.Product, error) {
	if u.Stock != nil {
		if *u.Stock < 0 || *u.Stock > flashsale.MaxStock {
			return nil, flashsale.Errorf(flashsale.EINVALID, "stock must be between 0 and %d", flashsale.MaxStock)
		}
		pool := flashsale.ProductPool(id)
		remaining, err := s.inventory.SetQuantity(ctx, pool, *u.Stock)
		if errors.Is(err, flashsale.ErrPoolNotLoaded) {
			// Nothing to keep in step: the pool will be built from the new count on first use.
		} else if err != nil {
			return nil, err
		} else {
			if remaining > 0 {
				s.soldOut.Clear(pool)
			}
			defer s.publish(ctx, pool, remaining)
		}
	}
	return s.products.UpdateProduct(ctx, id, u)
}
