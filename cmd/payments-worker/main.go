// Command payments-worker charges placed orders through the (mock) payment gateway. Run as
// many replicas as the queue needs: charges are idempotent by order id.
package main

import (
	"context"

	"github.com/flashsale/flashsale/app"
)

func main() {
	app.WorkerMain("payments", func(ctx context.Context, d *app.Deps) error {
		return app.RunPayments(ctx, d, app.PaymentsConfig{})
	})
}
