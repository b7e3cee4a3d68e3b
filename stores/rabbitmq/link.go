package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Link tells whether a consumer is connected to its broker and consuming, for a worker's
// readiness check. A new Link is down until the consumer it is given to starts consuming.
type Link struct {
	mu   sync.Mutex
	up   bool
	why  error
	name string
}

// NewLink returns a Link, down until a consumer sets it.
func NewLink() *Link { return &Link{why: errors.New("not connected yet")} }

// set records the consumer of queue as consuming (why nil) or not (why it stopped).
func (l *Link) set(queue string, why error) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.name = queue
	l.up, l.why = why == nil, why
}

// Check returns nil while the consumer is consuming, and why not otherwise.
func (l *Link) Check(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.up {
		return nil
	}
	if l.name == "" {
		return fmt.Errorf("rabbitmq: %w", l.why)
	}
	return fmt.Errorf("rabbitmq: consumer of %s: %w", l.name, l.why)
}
