package checkout

import (
	"context"
	"errors"
	"time"

	"github.com/flashsale/flashsale"
)

// maxCachedSales bounds the sale cache; past it the cache starts over.
const maxCachedSales = 10_000

// CreateSale validates and stores a sale and loads its pool into Redis at once.
// BAD_USER_INPUT, NOT_FOUND (product).
func (s *Service) CreateSale(ctx context.Context, sale *flashsale.FlashSale) error {
	if err := sale.Validate(s.now()); err != nil {
		return err
	}
	if err := s.sales.CreateSale(ctx, sale); err != nil {
		return err
	}
	// If this load fails the pool is built on first use or by the reconciler before the
	// sale starts.
	s.loadNew(ctx, flashsale.SalePool(sale.ID), saleTerms(sale))
	s.cacheSale(sale)
	return nil
}

// loadNew loads the pool of a new sale or product: its first generation, no holds.
func (s *Service) loadNew(ctx context.Context, pool flashsale.PoolKey, t flashsale.PoolTerms) {
	gen, err := s.ledger.Fence(ctx, pool, 0)
	if err == nil {
		_, err = s.inventory.Load(ctx, pool, t, nil, flashsale.PoolVersion{Generation: gen})
	}
	if err != nil {
		s.log.WarnContext(ctx, "load new pool", "pool", string(pool), "err", err)
	}
}

func saleTerms(sale *flashsale.FlashSale) flashsale.PoolTerms {
	return flashsale.PoolTerms{
		Quantity: sale.Quantity, StartsAt: sale.StartsAt, EndsAt: sale.ClosesAt(), PerUserLimit: sale.PerUserLimit,
	}
}

func productTerms(p *flashsale.Product) flashsale.PoolTerms {
	return flashsale.PoolTerms{Quantity: p.Stock}
}

// saleCacheTTL is how long the service keeps a sale in memory; reading it again goes to the
// sale store's cache, whose local copies staff changes drop in every process.
const saleCacheTTL = time.Second

// cachedSale is a sale kept in memory and when it was read.
type cachedSale struct {
	sale *flashsale.FlashSale
	at   time.Time
}

// Sale returns a sale through the in-process cache. NOT_FOUND.
func (s *Service) Sale(ctx context.Context, id flashsale.SaleID) (*flashsale.FlashSale, error) {
	s.salesMu.RLock()
	c := s.saleMap[id]
	s.salesMu.RUnlock()
	if c.sale != nil && time.Since(c.at) < saleCacheTTL {
		return c.sale, nil
	}
	sale, err := s.sales.FindSaleByID(ctx, id)
	if err != nil {
		return nil, err
	}
	s.cacheSale(sale)
	return sale, nil
}

func (s *Service) cacheSale(sale *flashsale.FlashSale) {
	s.salesMu.Lock()
	defer s.salesMu.Unlock()
	if len(s.saleMap) >= maxCachedSales {
		clear(s.saleMap)
	}
	s.saleMap[sale.ID] = cachedSale{sale: sale, at: time.Now()}
}

// SaleRemaining returns a sale's live remaining count, rebuilding its pool if Redis lost it.
func (s *Service) SaleRemaining(ctx context.Context, sale *flashsale.FlashSale) (int, error) {
	return s.remaining(ctx, flashsale.SalePool(sale.ID), s.saleTermsFunc(sale.ID))
}

// ProductRemaining returns a product's live regular stock.
func (s *Service) ProductRemaining(ctx context.Context, p *flashsale.Product) (int, error) {
	return s.remaining(ctx, flashsale.ProductPool(p.ID), func(context.Context) (flashsale.PoolTerms, error) {
		return productTerms(p), nil
	})
}

func (s *Service) remaining(ctx context.Context, pool flashsale.PoolKey, terms termsFunc) (int, error) {
	n, err := s.inventory.Remaining(ctx, pool)
	if err == flashsale.ErrPoolNotLoaded {
		if err = s.rebuild(ctx, pool, 0, terms, RepairLostPool); err == nil {
			n, err = s.inventory.Remaining(ctx, pool)
		}
	}
	return n, err
}

// SaleStatus is a sale's status now, from the clock and its live stock.
func (s *Service) SaleStatus(ctx context.Context, sale *flashsale.FlashSale) (flashsale.SaleStatus, error) {
	now := s.now()
	if now.Before(sale.StartsAt) || !now.Before(sale.EndsAt) {
		return sale.StatusAt(now, sale.Quantity), nil
	}
	n, err := s.SaleRemaining(ctx, sale)
	if err != nil {
		return "", err
	}
	return sale.StatusAt(now, n), nil
}

// ListSales returns the sales of the last day and the future, filtered by status if given.
func (s *Service) ListSales(ctx context.Context, status *flashsale.SaleStatus) ([]*flashsale.FlashSale, error) {
	sales, err := s.sales.ListSales(ctx, s.now().Add(-24*time.Hour))
	if err != nil || status == nil {
		return sales, err
	}
	var out []*flashsale.FlashSale
	for _, sale := range sales {
		st, err := s.SaleStatus(ctx, sale)
		if err != nil {
			return nil, err
		}
		if st == *status {
			out = append(out, sale)
		}
	}
	return out, nil
}

// SaleStats returns a sale's figures with its attempts and conversion. The attempts this
// process refused from memory are flushed first, so they are all counted; other processes'
// arrive with their next flush.
func (s *Service) SaleStats(ctx context.Context, id flashsale.SaleID) (*flashsale.SaleStats, error) {
	if s.stats == nil {
		return &flashsale.SaleStats{}, nil
	}
	st, err := s.stats.SaleStats(ctx, id)
	if err != nil {
		return nil, err
	}
	if s.attempts != nil {
		if err := s.attempts.Flush(ctx); err != nil {
			s.log.WarnContext(ctx, "flush attempts refused from memory", "err", err)
		}
	}
	if st.Attempts, err = s.inventory.Attempts(ctx, flashsale.SalePool(id)); err != nil && !errors.Is(err, flashsale.ErrPoolNotLoaded) {
		return nil, err
	}
	if st.Attempts > 0 {
		st.Conversion = float64(st.Orders) / float64(st.Attempts)
	}
	return st, nil
}
