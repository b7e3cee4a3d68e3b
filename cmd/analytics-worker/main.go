// Command analytics-worker counts flash-sale figures from the order events on Kafka
// (KAFKA_BROKERS). Replicas share the topic's partitions as one consumer group.
package main

import (
	"context"
	"errors"

	"github.com/flashsale/flashsale/app"
)

func main() {
	app.WorkerMain("analytics", func(ctx context.Context, d *app.Deps) error {
		if len(d.Config.KafkaBrokers) == 0 {
			return errors.New("KAFKA_BROKERS is required (make run embeds a broker; this binary does not)")
		}
		return app.RunAnalytics(ctx, d, d.Config.KafkaBrokers)
	})
}
