package app

import (
	"context"

	"github.com/flashsale/flashsale/stores/postgres"
	"github.com/flashsale/flashsale/workers/pruner"
)

// RunPruner deletes, until ctx ends, the rows past their retention (OUTBOX_RETENTION,
// DEDUP_RETENTION, REFRESH_TOKEN_RETENTION, RESERVATION_RETENTION) on every shard, counting them on d.Registry.
func RunPruner(ctx context.Context, d *Deps) {
	pruner.New(postgres.NewPruner(d.DB), pruner.Config{
		OutboxRetention:       d.Config.OutboxRetention,
		DedupRetention:        d.Config.DedupRetention,
		RefreshTokenRetention: d.Config.RefreshTokenRetention,
		ReservationRetention:  d.Config.ReservationRetention,
		Registerer:            d.Registry,
	}, d.Log.With("worker", "pruner")).Run(ctx)
}
