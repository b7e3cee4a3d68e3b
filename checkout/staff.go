package checkout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flashsale/flashsale"
)

// What shop staff do to a sale once it exists: change its terms while it is scheduled, end it
// early, cancel it; and retire a product.
//
// Each writes the sale's row under its lock and, before the row commits, rebuilds the sale's
// pool in Redis with the new terms (a new generation, so a reservation the old pool granted
// and the ledger has not recorded is refused and made again in the new pool, which judges it
// by the new terms). A refusal from Redis therefore leaves the row as it was, and once the
// answer is sent no replica sells under the old terms. A sale's terms are kept in each
// process's memory for at most saleCacheTTL, and a change needs its sale at least
// SaleChangeLead from its start, so no buyer meets an old price.

// rebuildForTerms is the reason of a rebuild that follows the staff's change of a sale's
// terms; it is not counted as a repair.
const rebuildForTerms = "terms"

// ChangeSale changes the terms of a scheduled sale. CONFLICT (started, cancelled, or starting
// within SaleChangeLead), BAD_USER_INPUT, NOT_FOUND, UNAVAILABLE (Redis could not follow).
func (s *Service) ChangeSale(ctx context.Context, id flashsale.SaleID, c flashsale.SaleChange) (*flashsale.FlashSale, error) {
	return s.updateSale(ctx, id, func(sale *flashsale.FlashSale, now time.Time) error { return c.Apply(sale, now) })
}

// EndSale ends a running (or sold-out) sale now; its orders stay as they are. CONFLICT (not
// started, ended or cancelled), NOT_FOUND, UNAVAILABLE.
func (s *Service) EndSale(ctx context.Context, id flashsale.SaleID) (*flashsale.FlashSale, error) {
	return s.updateSale(ctx, id, func(sale *flashsale.FlashSale, now time.Time) error { return sale.EndEarly(now) })
}

// CancelSale cancels a sale, scheduled, running or ended: it sells nothing more, its PENDING
// orders are cancelled and their units go back, and its PAID orders are cancelled, which has
// the payment worker refund each once (see Cancel). CONFLICT (cancelled before), NOT_FOUND,
// UNAVAILABLE.
//
// The orders are cancelled after the sale's row commits. An order whose units were taken just
// before the pool closed may be written after they were read, and a process may die halfway:
// reconciliation cancels the live orders of every cancelled sale on each pass, so both end
// cancelled (and refunded if charged) within a pass.
func (s *Service) CancelSale(ctx context.Context, id flashsale.SaleID) (*flashsale.FlashSale, error) {
	sale, err := s.updateSale(ctx, id, func(sale *flashsale.FlashSale, now time.Time) error { return sale.Cancel(now) })
	if err != nil {
		return nil, err
	}
	if _, err := s.cancelSaleOrders(context.WithoutCancel(ctx), sale); err != nil {
		// The sale is closed; reconciliation cancels the rest.
		s.log.WarnContext(ctx, "cancel the orders of a cancelled flash sale; reconciliation will retry",
			"sale", sale.ID.String(), "err", err)
	}
	return sale, nil
}

// updateSale applies change to the sale under its row's lock, and has the pool follow before
// the row commits.
func (s *Service) updateSale(ctx context.Context, id flashsale.SaleID, change func(*flashsale.FlashSale, time.Time) error) (*flashsale.FlashSale, error) {
	sale, err := s.sales.UpdateSale(ctx, id,
		func(_ context.Context, sale *flashsale.FlashSale) error {
			return change(sale, s.now().UTC().Truncate(time.Microsecond)) // PostgreSQL keeps microseconds
		},
		func(ctx context.Context, sale *flashsale.FlashSale) error { return s.followTerms(ctx, sale) })
	if err != nil {
		if flashsale.ErrorCode(err) != flashsale.EINTERNAL {
			return nil, err
		}
		return nil, fmt.Errorf("update flash sale %s: %w", id, err)
	}
	s.cacheSale(sale)
	return sale, nil
}

// followTerms rebuilds the sale's pool with its new terms, at a new generation. A pool Redis
// does not hold is built from scratch.
func (s *Service) followTerms(ctx context.Context, sale *flashsale.FlashSale) error {
	pool := flashsale.SalePool(sale.ID)
	var seen int64
	v, err := s.inventory.Version(ctx, pool)
	switch {
	case err == nil:
		seen = v.Generation
	case !errors.Is(err, flashsale.ErrPoolNotLoaded):
		return s.redisRefused(ctx, pool, err)
	}
	if err := s.build(ctx, pool, seen, constTerms(saleTerms(sale)), rebuildForTerms); err != nil {
		return s.redisRefused(ctx, pool, err)
	}
	return nil
}

// saleTermsFunc reads a sale's terms for a rebuild of its pool from its row, not from the
// service's memory or a cache, which may be behind a change, an end or a cancel, and waits
// for such a change in flight to commit: a pool rebuilt from older terms would sell again
// under them. build reads the terms after its fence, so a change that fenced first is read.
func (s *Service) saleTermsFunc(id flashsale.SaleID) termsFunc {
	return func(ctx context.Context) (flashsale.PoolTerms, error) {
		sale, err := s.sales.FindSaleSettled(ctx, id)
		if err != nil {
			return flashsale.PoolTerms{}, err
		}
		return saleTerms(sale), nil
	}
}

// redisRefused logs why the pool could not follow and answers UNAVAILABLE: nothing changed,
// and the same request may succeed shortly.
func (s *Service) redisRefused(ctx context.Context, pool flashsale.PoolKey, err error) error {
	s.log.WarnContext(ctx, "rebuild a stock pool with new terms", "pool", string(pool), "err", err)
	return flashsale.Retryable(flashsale.EUNAVAILABLE, time.Second, "stock cannot be counted just now; nothing was changed; try again")
}

// cancelSaleOrders cancels every order of the sale that still holds units, and returns how
// many it cancelled. An order that moved meanwhile (paid, expired, cancelled) is not an error:
// a payment arriving after the cancel is refunded by the payment worker.
func (s *Service) cancelSaleOrders(ctx context.Context, sale *flashsale.FlashSale) (int, error) {
	pool := flashsale.SalePool(sale.ID)
	holds, err := s.orders.HoldingOrders(ctx, pool)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, h := range holds {
		_, err := s.Transition(ctx, h.OrderID, []flashsale.OrderStatus{flashsale.OrderPending, flashsale.OrderPaid}, flashsale.OrderCancelled)
		switch flashsale.ErrorCode(err) {
		case "":
			n++
		case flashsale.ECONFLICT, flashsale.ENOTFOUND:
		default:
			errs = append(errs, err)
		}
	}
	if n > 0 {
		s.log.InfoContext(ctx, "cancelled the orders of a cancelled flash sale", "sale", sale.ID.String(), "orders", n)
	}
	return n, errors.Join(errs...)
}

// RetireProduct retires a product: regular orders of it are refused (SALE_NOT_ACTIVE), it
// gets no new flash sale, and the catalog leaves it out unless asked; its orders stay as they
// are. Retiring a retired product changes nothing. CONFLICT (a flash sale of it is scheduled
// or running: end or cancel it first), NOT_FOUND.
func (s *Service) RetireProduct(ctx context.Context, id flashsale.ProductID) (*flashsale.Product, error) {
	return s.products.UpdateProduct(ctx, id, flashsale.ProductUpdate{Retire: true}, nil)
}
