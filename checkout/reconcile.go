package checkout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flashsale/flashsale"
)

// rebuild builds a pool from PostgreSQL: the pool Redis lost (seen 0), or the stale copy of
// generation seen. It waits at most RebuildWait (and ctx) for the rebuild, which runs on
// without it, bounded by RebuildTimeout; a buyer who stops waiting gets UNAVAILABLE.
// Concurrent callers in one process share one rebuild; across processes the generation
// decides which Load is kept.
func (s *Service) rebuild(ctx context.Context, pool flashsale.PoolKey, seen int64, terms termsFunc, kind string) error {
	ch := s.loads.DoChan(string(pool), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RebuildTimeout)
		defer cancel()
		return nil, s.build(ctx, pool, seen, terms, kind)
	})
	wait := time.NewTimer(s.cfg.RebuildWait)
	defer wait.Stop()
	select {
	case r := <-ch:
		if r.Err != nil {
			s.log.WarnContext(ctx, "rebuild stock pool", "pool", string(pool), "err", r.Err)
			return flashsale.ErrPoolNotLoaded
		}
		return nil
	case <-wait.C:
	case <-ctx.Done():
	}
	return flashsale.ErrPoolNotLoaded
}

// build is one rebuild (see the package comment). It fences the pool's generation first, so
// that every reservation of the lost or stale pool is either in the ledger by then or will be
// refused; it then counts as held the units of live orders and of recent reservations whose
// orders are not written yet (their inserts may be in flight), and loads the pool with the
// new generation, numbering on from the highest reservation recorded.
func (s *Service) build(ctx context.Context, pool flashsale.PoolKey, seen int64, terms termsFunc, kind string) error {
	if seen == 0 {
		// Lost: another process may have rebuilt it meanwhile.
		if _, err := s.inventory.Version(ctx, pool); err == nil {
			return nil
		}
		var err error
		if seen, err = s.ledger.Fence(ctx, pool, 0); err != nil {
			return err
		}
	}
	gen, err := s.ledger.Fence(ctx, pool, seen)
	if err != nil {
		return err
	}
	// The terms are read after the fence: a change of them (checkout/staff.go) fences the
	// pool while it holds the sale's row, so they are either read after it commits or
	// superseded by the pool it loads at its later generation.
	t, err := terms(ctx)
	if err != nil {
		return err
	}
	maxSeq, recent, err := s.ledger.Recorded(ctx, pool, s.cfg.OrphanGrace)
	if err != nil {
		return err
	}
	holds, err := s.orders.HoldingOrders(ctx, pool)
	if err != nil {
		return err
	}
	counted := make(map[flashsale.OrderID]bool, len(holds))
	for _, h := range holds {
		counted[h.OrderID] = true
	}
	var pending []flashsale.Hold
	for _, r := range recent {
		if !counted[r.OrderID] {
			pending = append(pending, r)
		}
	}
	if len(pending) > 0 {
		ids := make([]flashsale.OrderID, len(pending))
		for i, r := range pending {
			ids[i] = r.OrderID
		}
		orders, errs := s.orders.FindOrdersByIDs(ctx, ids)
		for i, r := range pending {
			switch {
			case flashsale.ErrorCode(errs[i]) == flashsale.ENOTFOUND:
				// Not written yet, or never: held until its insert lands or reconciliation
				// finds it an orphan.
				holds = append(holds, r)
			case errs[i] != nil:
				return errs[i]
			case orders[i].Status.HoldsStock(): // written since HoldingOrders read its shard
				holds = append(holds, r)
			}
		}
	}
	wrote, err := s.inventory.Load(ctx, pool, t, holds, flashsale.PoolVersion{Generation: gen, Seq: maxSeq})
	if err != nil || !wrote {
		return err
	}
	held := 0
	for _, h := range holds {
		held += h.Quantity
	}
	s.log.InfoContext(ctx, "rebuilt stock pool from PostgreSQL", "pool", string(pool), "why", kind,
		"generation", gen, "seq", maxSeq, "holds", len(holds), "held", held)
	if kind != rebuildForTerms { // staff changed the terms: nothing was wrong
		s.countRepair(kind, 1)
	}
	s.soldOut.Clear(pool)
	s.publish(ctx, pool, max(t.Quantity-held, 0))
	return nil
}

// Reconcile checks every pool of the sales that are not long over, and every product pool:
// pools Redis lost or holds as a stale copy are rebuilt, holds without a live order are
// released (the order was never written, or it was cancelled or expired and its release did
// not land), and the pool's quantity, stock and buyers' counts are made to agree with
// PostgreSQL and with its holds.
func (s *Service) Reconcile(ctx context.Context) error {
	sales, err := s.sales.ListSales(ctx, s.now().Add(-time.Hour))
	if err != nil {
		return err
	}
	var errs []error
	for _, sale := range sales {
		if sale.CancelledAt != nil {
			// Finishes a cancel that stopped halfway, and cancels the orders whose units
			// were taken just before the sale closed but written after its orders were.
			if _, err := s.cancelSaleOrders(ctx, sale); err != nil {
				errs = append(errs, err)
			}
		}
		t := saleTerms(sale)
		if err := s.ReconcilePool(ctx, flashsale.SalePool(sale.ID), constTerms(t), constLock(t)); err != nil {
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
			if err := s.ReconcilePool(ctx, flashsale.ProductPool(p.ID), s.productTermsFunc(p.ID), s.productLock(p.ID)); err != nil {
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

// lockFunc calls fn with a pool's terms while they cannot change.
type lockFunc func(ctx context.Context, fn func(context.Context, flashsale.PoolTerms) error) error

// constLock is the lockFunc of terms that never change (a sale's).
func constLock(t flashsale.PoolTerms) lockFunc {
	return func(ctx context.Context, fn func(context.Context, flashsale.PoolTerms) error) error {
		return fn(ctx, t)
	}
}

// productLock reads a product's stock under its row lock: an update in flight has set the
// pool's quantity before committing, so the stock is read once that update is decided, and
// no update changes the pool while reconciliation sets it.
func (s *Service) productLock(id flashsale.ProductID) lockFunc {
	return func(ctx context.Context, fn func(context.Context, flashsale.PoolTerms) error) error {
		return s.products.LockProduct(ctx, id, func(ctx context.Context, p *flashsale.Product) error {
			return fn(ctx, productTerms(p))
		})
	}
}

// ReconcilePool reconciles one pool (see Reconcile): terms are read for a rebuild, and lock
// holds them still while the pool's quantity is set.
//
// Live orders are read before the holds: an order is written only after its hold was taken,
// so a live order read first whose hold is missing afterwards was either released meanwhile
// (it is read again to tell) or is missing from a stale copy of the pool.
func (s *Service) ReconcilePool(ctx context.Context, pool flashsale.PoolKey, terms termsFunc, lock lockFunc) error {
	live, err := s.orders.HoldingOrders(ctx, pool)
	if err != nil {
		return fmt.Errorf("reconcile %s: %w", pool, err)
	}
	holds, err := s.inventory.Holds(ctx, pool)
	if errors.Is(err, flashsale.ErrPoolNotLoaded) {
		return s.rebuildNow(ctx, pool, 0, terms, RepairLostPool)
	} else if err != nil {
		return fmt.Errorf("reconcile %s: %w", pool, err)
	}
	stale, err := s.missingHolds(ctx, pool, live, holds)
	if err != nil {
		return err
	}
	if stale {
		v, err := s.inventory.Version(ctx, pool)
		if err != nil {
			return fmt.Errorf("reconcile %s: %w", pool, err)
		}
		return s.rebuildNow(ctx, pool, v.Generation, terms, RepairStalePool)
	}
	if err := s.releaseStrayHolds(ctx, pool, holds); err != nil {
		return err
	}
	var r flashsale.PoolRepairs
	err = lock(ctx, func(ctx context.Context, t flashsale.PoolTerms) error {
		r, err = s.inventory.Repair(ctx, pool, t.Quantity)
		return err
	})
	if errors.Is(err, flashsale.ErrPoolNotLoaded) {
		return nil // lost meanwhile: the next pass, or the next buyer, rebuilds it
	} else if err != nil {
		return fmt.Errorf("reconcile %s: %w", pool, err)
	}
	for kind, did := range map[string]bool{RepairQuantity: r.Quantity, RepairStock: r.Stock, RepairBuyers: r.Buyers} {
		if did {
			s.log.WarnContext(ctx, "repaired stock pool", "pool", string(pool), "what", kind)
			s.countRepair(kind, 1)
		}
	}
	return nil
}

// rebuildNow is rebuild for reconciliation, which waits for the rebuild however long it
// takes (up to RebuildTimeout) and reports its error.
func (s *Service) rebuildNow(ctx context.Context, pool flashsale.PoolKey, seen int64, terms termsFunc, kind string) error {
	_, err, _ := s.loads.Do(string(pool), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RebuildTimeout)
		defer cancel()
		return nil, s.build(ctx, pool, seen, terms, kind)
	})
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", pool, err)
	}
	return nil
}

// missingHolds reports whether some order that holds units in PostgreSQL has no hold in the
// pool: the pool is a stale copy. An order whose hold is missing is read again, with the
// holds, to rule out a release that ran between the two reads.
func (s *Service) missingHolds(ctx context.Context, pool flashsale.PoolKey, live, holds []flashsale.Hold) (bool, error) {
	missing := withoutHolds(live, holds)
	if len(missing) == 0 {
		return false, nil
	}
	ids := make([]flashsale.OrderID, len(missing))
	for i, h := range missing {
		ids[i] = h.OrderID
	}
	orders, errs := s.orders.FindOrdersByIDs(ctx, ids)
	again, err := s.inventory.Holds(ctx, pool)
	if err != nil {
		return false, fmt.Errorf("reconcile %s: %w", pool, err)
	}
	var still []flashsale.Hold
	for i, h := range missing {
		if errs[i] == nil && orders[i].Status.HoldsStock() {
			still = append(still, h)
		}
	}
	if missing = withoutHolds(still, again); len(missing) == 0 {
		return false, nil
	}
	s.log.WarnContext(ctx, "live orders without a hold: the pool is a stale copy", "pool", string(pool),
		"orders", len(missing), "first", missing[0].OrderID.String())
	return true, nil
}

// withoutHolds returns the orders of live that have no hold in holds.
func withoutHolds(live, holds []flashsale.Hold) []flashsale.Hold {
	held := make(map[flashsale.OrderID]bool, len(holds))
	for _, h := range holds {
		held[h.OrderID] = true
	}
	var out []flashsale.Hold
	for _, h := range live {
		if !held[h.OrderID] {
			out = append(out, h)
		}
	}
	return out
}

// releaseStrayHolds releases the holds whose order was never written (once older than
// OrphanGrace) or no longer holds stock.
func (s *Service) releaseStrayHolds(ctx context.Context, pool flashsale.PoolKey, holds []flashsale.Hold) error {
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
			if s.abandon(ctx, pool, h.OrderID) {
				s.countRepair(RepairOrphanHold, 1)
			}
		case errs[i] == nil && !orders[i].Status.HoldsStock():
			s.log.InfoContext(ctx, "releasing hold of a finished order", "pool", string(pool), "order", h.OrderID.String(), "status", string(orders[i].Status))
			if s.release(ctx, pool, h.OrderID) {
				s.countRepair(RepairFinishedHold, 1)
			}
		}
	}
	return nil
}
