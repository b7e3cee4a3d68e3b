// Package analytics counts flash-sale figures from the order events on Kafka: orders, units
// and revenue per sale and per minute, each event counted once however often it arrives.
package analytics

import (
	"context"

	"github.com/flashsale/flashsale"
)

// Counter adds events to the figures, once per event id.
type Counter interface {
	Count(ctx context.Context, e flashsale.OrderEvent) (bool, error)
	// CountMany counts many events with a few statements, and reports how many it counted.
	CountMany(ctx context.Context, events []flashsale.OrderEvent) (int, error)
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

// HandleBatch counts a batch of events together: in a flash sale they arrive by the
// thousand, and one transaction for a batch costs the database far less than one per event.
// On an error some events may have been counted; handling the batch again counts the rest.
func (w *Worker) HandleBatch(ctx context.Context, events []flashsale.OrderEvent) error {
	if len(events) == 0 {
		return nil
	}
	_, err := w.counter.CountMany(ctx, events)
	return err
}
