// Package analytics counts flash-sale figures from the order events on Kafka: orders, units
// and revenue per sale and per minute, each event counted once however often it arrives.
package analytics

import (
	"context"

	"github.com/flashsale/flashsale"
)

// Counter adds an event to the figures, once per event id.
type Counter interface {
	Count(ctx context.Context, e flashsale.OrderEvent) (bool, error)
}

// Worker handles order events for analytics.
type Worker struct{ counter Counter }

// NewWorker returns a worker.
func NewWorker(c Counter) *Worker { return &Worker{counter: c} }

// Handle counts the event.
func (w *Worker) Handle(ctx context.Context, e flashsale.OrderEvent) error {
	_, err := w.counter.Count(ctx, e)
	return err
}
