package checkout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flashsale/flashsale"
)

// rebuild recreates a pool that Redis lost, from the orders that hold its units. It first
// waits RebuildFence, so that inserts in flight when the pool vanished have settled: their
// orders are then either in PostgreSQL (and counted) or never will be. Reservations fail with
// ErrPoolNotLoaded meanwhile, which is what keeps the pool from selling units twice.
// Concurrent callers in one process share one rebuild; across processes Load writes once.
func (s *Service) rebuild(ctx context.Context, pool flashsale.PoolKey, terms termsFunc) error {
	_, err, _ := s.loads.Do(string(pool), func() (any, error) {
		t, err := terms(ctx)
		if err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(s.cfg.RebuildFence):
		}
		holds, err := s.orders.HoldingOrders(ctx, pool)
		if err != nil {
			return nil, err
		}
		wrote, err := s.inventory.Load(ctx, pool, t, holds)
		if err != nil {
			return nil, err
		}
		if wrote {
			held := 0
			for _, h := range holds {
				held += h.Quantity
			}
			s.log.InfoContext(ctx, "rebuilt stock pool from orders", "pool", string(pool), "holds", len(holds), "held", held)
			s.soldOut.Clear(pool)
			s.publish(ctx, pool, t.Quantity-held)
		}
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", pool, err)
	}
	return nil
}

// Reconcile checks every pool of the sales that are not long over, and every product pool:
// pools Redis lost are rebuilt, and holds without a live order are released (the order was
// never written, or it was cancelled or expired and its release did not land).
func (s *Service) Reconcile(ctx context.Context) error {
	sales, err := s.sales.ListSales(ctx, s.now().Add(-time.Hour))
	if err != nil {
		return err
	}
	var errs []error
	for _, sale := range sales {
		if err := s.ReconcilePool(ctx, flashsale.SalePool(sale.ID), constTerms(saleTerms(sale))); err != nil {
			errs = append(errs, err)
		}
	}
	var after flashsale.ProductID
	for {
		products, more, err := s.products.ListProducts(ctx, flashsale.MaxPageSize, after)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		for _, p := range products {
			if err := s.ReconcilePool(ctx, flashsale.ProductPool(p.ID), constTerms(productTerms(p))); err != nil {
				errs = append(errs, err)
			}
			after = p.ID
		}
		if !more {
			break
		}
	}
	return errors.Join(errs...)
}

func constTerms(t flashsale.PoolTerms) termsFunc {
	return func(context.Context) (flashsale.PoolTerms, error) { return t, nil }
}

// ReconcilePool reconciles one pool (see Reconcile).
func (s *Service) ReconcilePool(ctx context.Context, pool flashsale.PoolKey, terms termsFunc) error {
	holds, err := s.inventory.Holds(ctx, pool)
	if errors.Is(err, flashsale.ErrPoolNotLoaded) {
		return s.rebuild(ctx, pool, terms)
	} else if err != nil {
		return err
	}
	if len(holds) == 0 {
		return nil
	}
	ids := make([]flashsale.OrderID, len(holds))
	for i, h := range holds {
		ids[i] = h.OrderID
	}
	orders, errs := s.orders.FindOrdersByIDs(ctx, ids)
	orphanBefore := s.now().Add(-s.cfg.OrphanGrace)
	for i, h := range holds {
		switch {
		case flashsale.ErrorCode(errs[i]) == flashsale.ENOTFOUND && h.At.Before(orphanBefore):
			s.log.InfoContext(ctx, "releasing hold of an order never written", "pool", string(pool), "order", h.OrderID.String())
			s.abandon(ctx, pool, h.OrderID)
		case errs[i] == nil && !orders[i].Status.HoldsStock():
			s.log.InfoContext(ctx, "releasing hold of a finished order", "pool", string(pool), "order", h.OrderID.String(), "status", string(orders[i].Status))
			s.release(ctx, pool, h.OrderID)
		}
	}
	return nil
}
