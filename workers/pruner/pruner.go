// Package pruner deletes the rows that have served their purpose: outbox rows every broker has
// confirmed, the consumers' records of events already handled, refresh tokens that can no
// longer be spent, and the ledger's old reservations. Each is kept for a retention period
// first, then deleted a small batch at a time on every shard, so that pruning a large
// backlog never holds many locks or floods a shard's WAL. Several replicas may prune at once: a batch skips the rows another one holds.
package pruner

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/flashsale"
)

// Default retentions.
const (
	// DefaultOutboxRetention keeps a sent outbox row a day, for an operator to look at or
	// send again by hand.
	DefaultOutboxRetention = 24 * time.Hour
	// DefaultDedupRetention keeps a consumer's record of an event for 8 days. The record must
	// outlive every redelivery of the event, or the event is handled twice: RabbitMQ's
	// retries come back within a minute and a requeued message within the consumer's
	// downtime, but Kafka keeps records 7 days by default (log.retention.hours=168), and a
	// consumer group reset to the earliest offset replays all of them.
	DefaultDedupRetention = 8 * 24 * time.Hour
	// DefaultRefreshTokenRetention keeps a spent, revoked or expired refresh token 7 days.
	// While a spent token is kept, presenting it again revokes its whole family (it leaked);
	// once deleted it is merely refused.
	DefaultRefreshTokenRetention = 7 * 24 * time.Hour
	// DefaultReservationRetention keeps the ledger's record of a reservation 7 days: a
	// rebuild reads the recent ones, and an order is long written or released by then.
	DefaultReservationRetention = 7 * 24 * time.Hour
)

// Store deletes old rows, one shard and one batch at a time (stores/postgres.Pruner).
type Store interface {
	Shards() int
	Prune(ctx context.Context, shard int, table flashsale.PruneTable, before time.Time, limit int) (int, error)
}

// Config tunes a pruner; zero values take the defaults.
type Config struct {
	OutboxRetention       time.Duration // default DefaultOutboxRetention
	DedupRetention        time.Duration // default DefaultDedupRetention
	RefreshTokenRetention time.Duration // default DefaultRefreshTokenRetention
	ReservationRetention  time.Duration // default DefaultReservationRetention
	Every                 time.Duration // between rounds; default 10m
	Batch                 int           // rows per statement; default 500
	// Pause is the wait between two batches of one table, which leaves a shard room for its
	// real work while a large backlog drains; default 20ms.
	Pause time.Duration
	// Registerer, if set, gets the counter of rows pruned by table.
	Registerer prometheus.Registerer
}

// Pruner deletes rows past their retention on every shard.
type Pruner struct {
	store     Store
	cfg       Config
	retention map[flashsale.PruneTable]time.Duration
	pruned    *prometheus.CounterVec
	log       *slog.Logger
}

// New returns a pruner over store.
func New(store Store, cfg Config, log *slog.Logger) *Pruner {
	cfg.OutboxRetention = cmp.Or(cfg.OutboxRetention, DefaultOutboxRetention)
	cfg.DedupRetention = cmp.Or(cfg.DedupRetention, DefaultDedupRetention)
	cfg.RefreshTokenRetention = cmp.Or(cfg.RefreshTokenRetention, DefaultRefreshTokenRetention)
	cfg.ReservationRetention = cmp.Or(cfg.ReservationRetention, DefaultReservationRetention)
	cfg.Every = cmp.Or(cfg.Every, 10*time.Minute)
	cfg.Pause = cmp.Or(cfg.Pause, 20*time.Millisecond)
	cfg.Batch = cmp.Or(cfg.Batch, 500)
	p := &Pruner{
		store: store,
		cfg:   cfg,
		retention: map[flashsale.PruneTable]time.Duration{
			flashsale.PruneOutbox:        cfg.OutboxRetention,
			flashsale.PruneAnalyticsSeen: cfg.DedupRetention,
			flashsale.PruneRefreshTokens: cfg.RefreshTokenRetention,
			// A family outlives its last token by a retention too, so that a token spent
			// just before the pruning still finds its family revoked on reuse.
			flashsale.PruneRefreshFamilies: cfg.RefreshTokenRetention,
			flashsale.PruneReservations:    cfg.ReservationRetention,
		},
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashsale_pruned_rows_total",
			Help: "Rows deleted by the pruner after their retention, by table.",
		}, []string{"table"}),
		log: log,
	}
	for _, t := range flashsale.PruneTables {
		p.pruned.WithLabelValues(string(t)) // every table on /metrics from the start
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(p.pruned); err != nil {
			// A second pruner in one process (tests) counts into the first one's series.
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				p.pruned = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	return p
}

// Collector is the counter of rows pruned, by table.
func (p *Pruner) Collector() *prometheus.CounterVec { return p.pruned }

// Run prunes every Config.Every until ctx ends, starting at once.
func (p *Pruner) Run(ctx context.Context) {
	t := time.NewTicker(p.cfg.Every)
	defer t.Stop()
	for {
		p.Prune(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Prune runs one round: on every shard, for every table, it deletes the rows whose retention
// ended by now, in batches until none is left. It returns the rows deleted by table. A
// shard that fails is logged and skipped until the next round; the others go on.
func (p *Pruner) Prune(ctx context.Context, now time.Time) map[flashsale.PruneTable]int {
	total := map[flashsale.PruneTable]int{}
	for shard := range p.store.Shards() {
		for _, table := range flashsale.PruneTables {
			n, err := p.drain(ctx, shard, table, now.Add(-p.retention[table]))
			total[table] += n
			if err != nil {
				if ctx.Err() == nil {
					p.log.Warn("prune failed; will try again next round", "shard", shard, "table", string(table), "err", err)
				}
				break // the shard is likely down: its other tables can wait too
			}
		}
	}
	for table, n := range total {
		if n > 0 {
			p.log.Info("pruned", "table", string(table), "rows", n)
		}
	}
	return total
}

// drain deletes table's rows older than before on shard, a batch at a time.
func (p *Pruner) drain(ctx context.Context, shard int, table flashsale.PruneTable, before time.Time) (int, error) {
	counter := p.pruned.WithLabelValues(string(table))
	total := 0
	for {
		n, err := p.store.Prune(ctx, shard, table, before, p.cfg.Batch)
		total += n
		counter.Add(float64(n))
		if err != nil || n < p.cfg.Batch {
			return total, err
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(p.cfg.Pause):
		}
	}
}
