// Command relay sends the shards' outboxes to RabbitMQ and Kafka, and runs the sweeper that
// expires stale orders and reconciles stock pools with PostgreSQL, and the pruner that deletes
// rows past their retention. Several replicas may run.
package main

import (
	"context"
	"errors"
	"sync"

	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/workers/sweeper"
)

func main() {
	app.WorkerMain("relay", func(ctx context.Context, d *app.Deps) error {
		brokers := d.Config.KafkaBrokers
		if len(brokers) == 0 {
			return errors.New("KAFKA_BROKERS is required (make run embeds a broker; this binary does not)")
		}
		var wg sync.WaitGroup
		wg.Go(func() { app.RunSweeper(ctx, d, sweeper.Config{}) })
		wg.Go(func() { app.RunPruner(ctx, d) })
		app.RunRelays(ctx, d, brokers)
		wg.Wait()
		return nil
	})
}
