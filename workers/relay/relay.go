// Package relay moves order events from the shards' outboxes to the brokers: RabbitMQ for the
// payment and notification workers, Kafka for analytics. A row is marked sent only after its
// broker confirmed it, so an outage delays events but loses none, and the relay catches up
// when the broker returns. Consumers deduplicate by event id, since a crash between the
// confirm and the mark sends a row twice.
package relay

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/flashsale/flashsale/stores/postgres"
)

// Sink delivers a batch of outbox rows to a broker, returning nil only once the broker has
// confirmed every one.
type Sink interface {
	Send(ctx context.Context, rows []postgres.OutboxRow) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, rows []postgres.OutboxRow) error

// Send calls f.
func (f SinkFunc) Send(ctx context.Context, rows []postgres.OutboxRow) error { return f(ctx, rows) }

// Config tunes a relay; zero values take the defaults.
type Config struct {
	Batch        int           // rows per claim; default 500
	PollInterval time.Duration // wait when the outbox is empty; default 50ms
	MaxBackoff   time.Duration // longest wait after failures; default 5s
}

// Relay drains one destination's column of every shard's outbox into a sink.
type Relay struct {
	outbox *postgres.Outbox
	shards int
	dest   postgres.Destination
	sink   Sink
	cfg    Config
	log    *slog.Logger
}

// New returns a relay of the outbox rows not yet sent to dest.
func New(db *postgres.DB, dest postgres.Destination, sink Sink, cfg Config, log *slog.Logger) *Relay {
	if cfg.Batch == 0 {
		cfg.Batch = 500
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	return &Relay{outbox: postgres.NewOutbox(db), shards: db.Shards(), dest: dest, sink: sink, cfg: cfg,
		log: log.With("relay", string(dest))}
}

// Run relays until ctx ends, one loop per shard so a slow shard holds back no other.
func (r *Relay) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for shard := range r.shards {
		wg.Go(func() { r.runShard(ctx, shard) })
	}
	wg.Wait()
}

func (r *Relay) runShard(ctx context.Context, shard int) {
	backoff := time.Duration(0)
	failing := false
	found := false // whether the last claim found rows; if not, look before claiming again
	for ctx.Err() == nil {
		n, err := r.claim(ctx, shard, found)
		found = n > 0
		wait := r.cfg.PollInterval
		switch {
		case err != nil && ctx.Err() == nil:
			backoff = min(max(2*backoff, 100*time.Millisecond), r.cfg.MaxBackoff)
			wait = backoff
			if !failing { // one line per outage, not one per attempt
				r.log.Warn("relay failing; will retry", "shard", shard, "err", err)
			}
			failing = true
		case err == nil:
			if failing {
				r.log.Info("relay recovered", "shard", shard)
			}
			failing, backoff = false, 0
			if n == r.cfg.Batch {
				continue // more are waiting
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// claim relays a batch of shard's outbox. Unless the last claim found rows, it first looks
// whether there are any: between sales every poll finds nothing, and looking is one
// statement where a claim is a transaction of three.
func (r *Relay) claim(ctx context.Context, shard int, found bool) (int, error) {
	if !found {
		pending, err := r.outbox.Pending(ctx, shard, r.dest)
		if err != nil || !pending {
			return 0, err
		}
	}
	return r.outbox.Relay(ctx, shard, r.dest, r.cfg.Batch, r.sink.Send)
}
