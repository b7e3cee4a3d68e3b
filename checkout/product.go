package checkout

import (
	"context"
	"errors"

	"github.com/flashsale/flashsale"
)

// UpdateProduct edits a product; a new stock count becomes the quantity of its regular pool,
// which refuses (CONFLICT) a count below the units that orders already hold. NOT_FOUND,
// BAD_USER_INPUT, CONFLICT.
//
// PostgreSQL validates and writes the row first, under its lock; the pool follows before the
// row commits, so a refusal from either side leaves both as they were. A crash between the
// pool's change and the commit leaves the pool ahead of PostgreSQL, which reconciliation sets
// back.
func (s *Service) UpdateProduct(ctx context.Context, id flashsale.ProductID, u flashsale.ProductUpdate) (*flashsale.Product, error) {
	if u.Stock != nil && (*u.Stock < 0 || *u.Stock > flashsale.MaxStock) {
		return nil, flashsale.Errorf(flashsale.EINVALID, "stock must be between 0 and %d", flashsale.MaxStock)
	}
	pool := flashsale.ProductPool(id)
	synced, remaining := false, 0
	p, err := s.products.UpdateProduct(ctx, id, u, func(ctx context.Context, p *flashsale.Product) error {
		if u.Stock == nil {
			return nil
		}
		n, err := s.inventory.SetQuantity(ctx, pool, p.Stock)
		if errors.Is(err, flashsale.ErrPoolNotLoaded) {
			return nil // nothing to keep in step: the pool is built from the row on first use
		} else if err != nil {
			return err
		}
		synced, remaining = true, n
		return nil
	})
	if err != nil {
		return nil, err
	}
	if synced {
		if remaining > 0 {
			s.soldOut.Clear(pool)
		}
		s.publish(ctx, pool, remaining)
	}
	return p, nil
}

// CreateProduct stores a product and loads its regular pool at once, so that the first buyer
// (or the first reader of its stock) does not wait for a rebuild.
func (s *Service) CreateProduct(ctx context.Context, p *flashsale.Product) error {
	if err := s.products.CreateProduct(ctx, p); err != nil {
		return err
	}
	s.loadNew(ctx, flashsale.ProductPool(p.ID), productTerms(p))
	return nil
}
