// Command relay sends the shards' outboxes to RabbitMQ and Kafka, and runs the sweeper that
// expires stale orders and reconciles stock pools with PostgreSQL. Several replicas may run.
package main

import (
	"context"
	"errors"

	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/workers/sweeper"
)

func main() {
	app.WorkerMain("relay", func(ctx context.Context, d *app.Deps) error {
		brokers := d.Config.KafkaBrokers
		if len(brokers) == 0 {
			return errors.New("KAFKA_BROKERS is required (make run embeds a broker; this binary does not)")
		}
		if err := app.PrepareBrokers(ctx, d.Config, brokers); err != nil {
			return err
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			app.RunSweeper(ctx, d, sweeper.Config{})
		}()
		app.RunRelays(ctx, d, brokers)
		<-done
		return nil
	})
}
