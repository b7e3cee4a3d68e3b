// Package sweeper runs the periodic upkeep of orders and stock: expiring PENDING orders past
// their reservation TTL, reconciling the Redis pools with PostgreSQL (rebuilding pools Redis
// lost or holds as a stale copy, releasing stray holds, setting quantities and counts right;
// each repair is counted in flashsale_reconciliation_repairs_total), and asking again for the
// settlement (refund) of ended orders whose payment is overdue. Every step is safe to run from
// several replicas at once (status moves are conditional, releases and settlements idempotent,
// rebuilds ordered by the pool's generation).
package sweeper

import (
	"context"
	"log/slog"
	"time"
)

// Checkout is what the sweeper drives.
type Checkout interface {
	ExpireStale(ctx context.Context, limit int) (int, error)
	Reconcile(ctx context.Context) error
	RequestSettlements(ctx context.Context, limit int) (int, error)
}

// Config sets the intervals; zero values take the defaults.
type Config struct {
	ExpireEvery    time.Duration // default 5s
	ReconcileEvery time.Duration // default 10s, also the pace of overdue settlements
}

// Run expires and reconciles until ctx ends, starting with a reconcile so that pools lost
// while nothing ran are rebuilt before buyers arrive.
func Run(ctx context.Context, c Checkout, cfg Config, log *slog.Logger) {
	if cfg.ExpireEvery == 0 {
		cfg.ExpireEvery = 5 * time.Second
	}
	if cfg.ReconcileEvery == 0 {
		cfg.ReconcileEvery = 10 * time.Second
	}
	expire := time.NewTicker(cfg.ExpireEvery)
	defer expire.Stop()
	reconcile := time.NewTicker(cfg.ReconcileEvery)
	defer reconcile.Stop()
	doReconcile := func() {
		if err := c.Reconcile(ctx); err != nil && ctx.Err() == nil {
			log.Warn("reconcile", "err", err)
		}
		n, err := c.RequestSettlements(ctx, 500)
		if err != nil && ctx.Err() == nil {
			log.Warn("request overdue settlements", "err", err)
		}
		if n > 0 {
			log.Warn("asked again for overdue settlements of ended orders", "count", n)
		}
	}
	doReconcile()
	for {
		select {
		case <-ctx.Done():
			return
		case <-expire.C:
			for { // drain the backlog in batches
				n, err := c.ExpireStale(ctx, 500)
				if err != nil && ctx.Err() == nil {
					log.Warn("expire stale orders", "err", err)
				}
				if n > 0 {
					log.Info("expired stale orders", "count", n)
				}
				if n < 500 || err != nil {
					break
				}
			}
		case <-reconcile.C:
			doReconcile()
		}
	}
}
