// Package relay moves order events from the shards' outboxes to the brokers: RabbitMQ for the
// payment and notification workers, Kafka for analytics. A row is marked sent only after its
// broker confirmed it, so an outage delays events but loses none, and the relay catches up
// when the broker returns. Consumers deduplicate by event id, since a crash between the
// confirm and the mark sends a row twice.
package relay

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/flashsale/flashsale"
)

// Outbox is the store of the shards' outboxes that a relay drains (stores/postgres.Outbox).
type Outbox interface {
	// Shards returns the number of shards, each with its own outbox.
	Shards() int
	// Pending reports whether shard has rows not yet sent to dest.
	Pending(ctx context.Context, shard int, dest flashsale.OutboxDestination) (bool, error)
	// Relay claims up to limit of shard's rows not yet sent to dest, calls send with them
	// and marks them sent only if send succeeded, all within ctx. It returns how many it
	// sent.
	Relay(ctx context.Context, shard int, dest flashsale.OutboxDestination, limit int, send func(context.Context, []flashsale.OutboxEvent) error) (int, error)
}

// Sink delivers a batch of outbox rows to a broker, returning nil only once the broker has
// confirmed every one.
type Sink interface {
	Send(ctx context.Context, rows []flashsale.OutboxEvent) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, rows []flashsale.OutboxEvent) error

// Send calls f.
func (f SinkFunc) Send(ctx context.Context, rows []flashsale.OutboxEvent) error { return f(ctx, rows) }

// Config tunes a relay; zero values take the defaults.
type Config struct {
	Batch        int           // rows per claim; default 500
	PollInterval time.Duration // wait when the outbox is empty; default 50ms
	MaxBackoff   time.Duration // longest wait after failures; default 5s
	// ClaimTimeout bounds a claim's transaction, the sink's Send included; default
	// DefaultClaimTimeout. The claimed rows stay locked while it is open, and a broker that
	// blocks publishers (a RabbitMQ resource alarm) would otherwise keep it open for as long
	// as the alarm lasts. When it runs out the claim rolls back, the rows stay unsent, and
	// the next claim, after the backoff, sends them again.
	ClaimTimeout time.Duration
	// Hold, if set, is called before each claim with the time the rows now waiting were
	// first seen, and the claim waits until it returns. In one process with the API it lets
	// a burst of buyers have the cores for a bounded time (perf/burst).
	Hold func(ctx context.Context, since time.Time)
	// Paced, if set, is asked before each claim whether to go slowly: then the claim takes
	// at most PacedBatch rows (default 32) per shard, and the next one waits PollInterval.
	// Held events let go at once would reach the broker together, and on shared cores
	// the broker would take them all for a moment (perf/burst).
	Paced      func() bool
	PacedBatch int
}

// DefaultClaimTimeout is how long a claim may hold its rows when Config says nothing: a batch
// is confirmed within milliseconds by a healthy broker, so this is only ever reached by one
// that is blocked or unreachable.
const DefaultClaimTimeout = 10 * time.Second

// Relay drains one destination's column of every shard's outbox into a sink.
type Relay struct {
	outbox Outbox
	shards int
	dest   flashsale.OutboxDestination
	sink   Sink
	cfg    Config
	log    *slog.Logger
}

// New returns a relay of the outbox rows not yet sent to dest.
func New(outbox Outbox, dest flashsale.OutboxDestination, sink Sink, cfg Config, log *slog.Logger) *Relay {
	if cfg.Batch == 0 {
		cfg.Batch = 500
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.ClaimTimeout == 0 {
		cfg.ClaimTimeout = DefaultClaimTimeout
	}
	if cfg.PacedBatch == 0 {
		cfg.PacedBatch = 32
	}
	return &Relay{outbox: outbox, shards: outbox.Shards(), dest: dest, sink: sink, cfg: cfg,
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
	// seen is when the rows still waiting were first seen; zero when none are known to wait.
	var seen time.Time
	for ctx.Err() == nil {
		limit := r.cfg.Batch
		if r.cfg.Paced != nil && r.cfg.Paced() {
			limit = min(limit, r.cfg.PacedBatch)
		}
		n, err := r.claim(ctx, shard, found, &seen, limit)
		found = n > 0
		if err == nil && n < limit {
			seen = time.Time{} // the outbox was emptied: rows found later are new ones
		}
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
			// else the outbox is empty, or the relay goes at its pace: look again later
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// claim relays a batch of shard's outbox. Unless the last claim found rows, it first looks
// whether there are any: between sales every poll finds nothing, and looking is one
// statement where a claim is a transaction of three. Rows found with *seen zero were first
// seen now; the Hold, if any, counts from then.
func (r *Relay) claim(ctx context.Context, shard int, found bool, seen *time.Time, limit int) (int, error) {
	if !found {
		pending, err := r.outbox.Pending(ctx, shard, r.dest)
		if err != nil || !pending {
			return 0, err
		}
	}
	if seen.IsZero() {
		*seen = time.Now()
	}
	if r.cfg.Hold != nil {
		r.cfg.Hold(ctx, *seen)
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
	claimCtx, cancel := context.WithTimeout(ctx, r.cfg.ClaimTimeout)
	defer cancel()
	n, err := r.outbox.Relay(claimCtx, shard, r.dest, limit, r.sink.Send)
	if err != nil && ctx.Err() == nil && claimCtx.Err() != nil {
		err = fmt.Errorf("claim held longer than %v; rolled back: %w", r.cfg.ClaimTimeout, err)
	}
	return n, err
}
