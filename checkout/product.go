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

// CreateProduct stores a product and loads its regular pool at once. A new product has no
// orders, so its pool needs no rebuild fence; one that is only built on first use would make
// the first buyer (or the first reader of its stock) wait out the fence.
func (s *Service) CreateProduct(ctx context.Context, p *flashsale.Product) error {
	if err := s.products.CreateProduct(ctx, p); err != nil {
		return err
	}
	if _, err := s.inventory.Load(ctx, flashsale.ProductPool(p.ID), productTerms(p), nil); err != nil {
		s.log.WarnContext(ctx, "load new product's pool", "product", p.ID.String(), "err", err)
	}
	return nil
}
