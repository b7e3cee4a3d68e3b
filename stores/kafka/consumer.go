package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Defaults of ConsumerConfig, and the client settings Consume does not expose.
const (
	defaultPoisonAttempts = 3
	defaultRetryMin       = 100 * time.Millisecond
	defaultRetryMax       = 30 * time.Second
	defaultMaxBatch       = 500

	// Kafka, and kfake, refuse sessions under 6s unless told otherwise (the embedded broker
	// is); 10s notices a crashed consumer quickly without evicting one for a slow GC.
	defaultSessionTimeout = 10 * time.Second
	// Members learn that a rebalance started from a heartbeat's answer, so the interval is
	// also how long a new member waits for the others to rejoin.
	defaultHeartbeatInterval = time.Second
	// How long the coordinator waits for every member to rejoin. A member rejoins without
	// waiting for its handler (see Consume), so 10s is ample.
	defaultRebalanceTimeout = 10 * time.Second

	// fetchMaxWait is how long the broker may hold a fetch waiting for new records. New
	// records still arrive at once; closing the client interrupts a fetch in flight.
	fetchMaxWait = time.Second
	// commitTimeout bounds the commit after a handled batch. The commit outlives ctx, since
	// dropping it would only make the records be handled again.
	commitTimeout = 10 * time.Second
)

// ConsumerConfig says which records Consume reads and what it does with them. Brokers,
// Topic, GroupID and one of Handler and BatchHandler are required; the rest have defaults.
type ConsumerConfig struct {
	Brokers []string
	Topic   string
	// GroupID names the consumer group. Consumers of one group share the topic's partitions
	// and its committed offsets; a new group starts at the oldest record.
	GroupID string

	// Handler processes one record. Consume calls it from one goroutine, one record at a
	// time, in each partition's order, and commits a record only after Handler returned nil
	// for it. A record can be handled again after a failure, a restart or a rebalance, so
	// Handler must be idempotent. See ErrPoison for records that can never succeed.
	Handler func(ctx context.Context, m Message) error

	// BatchHandler, set instead of Handler, processes records a batch at a time: the first
	// record that arrives and every record already fetched behind it, up to MaxBatch. Consume
	// never waits for more, so a lone record goes at once, and batches grow only while
	// BatchHandler is busy with the previous one. A batch holds records of any of the
	// consumer's partitions, each partition's in order; Consume calls BatchHandler from one
	// goroutine and commits a batch only after BatchHandler returned nil for it. A failing
	// batch is retried whole, as Handler's record is; one that fails with ErrPoison
	// PoisonAttempts times is split, and its records are handled one per call, so that only
	// the poison record is skipped. BatchHandler must be idempotent, like Handler, and
	// should rather skip a record it can never process than fail the whole batch for it.
	BatchHandler func(ctx context.Context, msgs []Message) error
	// MaxBatch bounds the records of one BatchHandler call (default 500).
	MaxBatch int

	// Options set TLS and SASL (WithTLS, WithSASL); none: plaintext.
	Options []Option

	// Log receives Consume's logs; nil means slog.Default().
	Log *slog.Logger

	// PoisonAttempts is how many times a record must fail with ErrPoison before it is
	// skipped (default 3). A few tries cost little and guard against a handler that calls
	// a passing failure permanent.
	PoisonAttempts int
	// RetryMin and RetryMax bound the pause between attempts at a failing record: it starts
	// at RetryMin and doubles up to RetryMax (defaults 100ms and 30s).
	RetryMin, RetryMax time.Duration

	// SessionTimeout, HeartbeatInterval and RebalanceTimeout tune the group protocol
	// (defaults 10s, 1s and 10s). A consumer that stops cleanly leaves the group at once;
	// SessionTimeout is how long a crashed one holds its partitions.
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration
	RebalanceTimeout  time.Duration

	// DrainTimeout is how long the record or batch in hand when ctx ends may go on: Consume
	// polls nothing more, lets the handler finish with a context that ends this much later,
	// and commits what it handled before it leaves the group, so that a consumer stopped for
	// a rollout leaves the next member nothing to handle again. Zero ends the handler's
	// context with ctx.
	DrainTimeout time.Duration
}

func (cfg *ConsumerConfig) check() error {
	switch {
	case len(cfg.Brokers) == 0:
		return errors.New("no broker addresses")
	case cfg.Topic == "":
		return errors.New("no topic")
	case cfg.GroupID == "":
		return errors.New("no group id")
	case cfg.Handler == nil && cfg.BatchHandler == nil:
		return errors.New("no handler")
	case cfg.Handler != nil && cfg.BatchHandler != nil:
		return errors.New("both Handler and BatchHandler set")
	case cfg.DrainTimeout < 0:
		return errors.New("negative DrainTimeout")
	}
	return nil
}

func (cfg *ConsumerConfig) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.PoisonAttempts <= 0 {
		cfg.PoisonAttempts = defaultPoisonAttempts
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = defaultMaxBatch
	}
	def(&cfg.RetryMin, defaultRetryMin)
	def(&cfg.RetryMax, defaultRetryMax)
	cfg.RetryMax = max(cfg.RetryMax, cfg.RetryMin)
	def(&cfg.SessionTimeout, defaultSessionTimeout)
	def(&cfg.HeartbeatInterval, defaultHeartbeatInterval)
	def(&cfg.RebalanceTimeout, defaultRebalanceTimeout)
}

// Consume joins cfg.GroupID and hands every record of cfg.Topic to cfg.Handler (or, in
// batches, to cfg.BatchHandler), at least once each, until ctx ends; then it commits what was
// handled, leaves the group and returns nil. It returns an error only for an invalid cfg:
// broker failures are logged and retried.
//
// A record is committed only after Handler (or BatchHandler, for its batch) succeeded, so a
// consumer stopped before that leaves the record to the next consumer of the group. A failing
// record is retried with backoff, holding back the records behind it, until it succeeds,
// until ctx ends, or (see ErrPoison) until it is found to be poison, when it is logged and
// skipped.
//
// The client is franz-go's, which fetches ahead and hands over whatever has arrived, up to
// a batch, in one poll. Handled records are marked and their offsets committed after each
// poll; a mark for a partition this member no longer owns (a rebalance moved it while its
// records were being handled) is dropped, so a commit never moves another member's offset
// back. Such records are handled again by their new owner, which at-least-once allows. A
// rebalance never waits for a handler: handlers may retry for long during an outage.
func Consume(ctx context.Context, cfg ConsumerConfig) error {
	if err := cfg.check(); err != nil {
		return fmt.Errorf("kafka: consume: %w", err)
	}
	cfg.setDefaults()
	log := cfg.Log.With("topic", cfg.Topic, "group", cfg.GroupID)
	security, err := buildOptions(cfg.Options).kgoOpts()
	if err != nil {
		return fmt.Errorf("kafka: consume: %w", err)
	}
	cl, err := kgo.NewClient(append(security,
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(clientID),
		kgo.WithLogger(kgoLogger{log: log}),
		kgo.ConsumerGroup(cfg.GroupID),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(fetchMaxWait),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(cfg.HeartbeatInterval),
		kgo.RebalanceTimeout(cfg.RebalanceTimeout),
		// Eager rebalances: every member gives up its partitions and takes its new share in
		// one round, which keeps a group's state easy to reason about; records in hand
		// for a partition that moved are dropped from the commit (see above).
		kgo.Balancers(kgo.RoundRobinBalancer()),
		// Only marked (handled) offsets are committed: after each poll, on a rebalance's
		// revocation, and when the client closes.
		kgo.AutoCommitMarks(),
	)...)
	if err != nil {
		return fmt.Errorf("kafka: consume: %w", err)
	}
	log.Info("consumer started")
	c := &consumer{cfg: cfg, cl: cl, log: log}
	c.run(ctx)
	// Close commits the marked offsets and leaves the group, so that the partitions move
	// to the other members now rather than after SessionTimeout.
	cl.Close()
	log.Info("consumer stopped")
	return nil
}

type consumer struct {
	cfg ConsumerConfig
	cl  *kgo.Client
	log *slog.Logger
}

// run polls, handles, marks and commits records until ctx ends.
func (c *consumer) run(ctx context.Context) {
	hctx, stop := drainContext(ctx, c.cfg.DrainTimeout) // the handlers': it outlives ctx by DrainTimeout
	defer stop()
	for failures := 0; ; {
		fetches := c.cl.PollRecords(ctx, c.cfg.MaxBatch)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			// The client keeps refetching and rejoining by itself; the pause only keeps a
			// broker outage from filling the log.
			failures++
			d := backoff(failures, c.cfg.RetryMin, c.cfg.RetryMax)
			for _, e := range errs {
				c.log.Warn("fetch failed", "partition", e.Partition, "err", e.Err, "retry_in", d)
			}
			if !sleep(ctx, d) {
				return
			}
		} else {
			failures = 0
		}
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		var handled int
		if c.cfg.BatchHandler != nil {
			handled = c.handleBatch(hctx, recs)
		} else {
			handled = c.handleEach(hctx, recs)
		}
		c.commit(ctx, recs[:handled])
		if handled < len(recs) || ctx.Err() != nil {
			return
		}
	}
}

// drainContext returns a context that ends drain after ctx does (with ctx when drain is
// zero), and a function that releases it.
func drainContext(ctx context.Context, drain time.Duration) (context.Context, context.CancelFunc) {
	if drain == 0 {
		return context.WithCancel(ctx)
	}
	out, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(drain, cancel)
		context.AfterFunc(out, func() { t.Stop() })
	})
	return out, func() {
		stop()
		cancel()
	}
}

// handleEach hands records to Handler one at a time and returns how many were handled (or
// skipped as poison) before ctx ended.
func (c *consumer) handleEach(ctx context.Context, recs []*kgo.Record) int {
	for i, r := range recs {
		if !c.handle(ctx, r) {
			return i
		}
	}
	return len(recs)
}

// handle calls the handler until it succeeds or the record proves poison, and reports
// whether the record may be committed: false means ctx ended first.
func (c *consumer) handle(ctx context.Context, r *kgo.Record) bool {
	m := fromRecord(r)
	log := c.log.With("partition", r.Partition, "offset", r.Offset)
	poisoned := 0
	for attempt := 1; ; attempt++ {
		err := c.cfg.Handler(ctx, m)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			// The handler most likely failed because ctx ended: leave the record to the
			// group's next consumer.
			log.Info("handler stopped; record left uncommitted", "err", err)
			return false
		}
		if errors.Is(err, ErrPoison) {
			poisoned++
			if poisoned >= c.cfg.PoisonAttempts {
				log.Error("skipping poison record", "key", string(r.Key), "attempts", attempt, "err", err)
				return true
			}
		}
		d := backoff(attempt, c.cfg.RetryMin, c.cfg.RetryMax)
		log.Warn("handler failed; retrying", "attempt", attempt, "retry_in", d, "err", err)
		if !sleep(ctx, d) {
			return false
		}
	}
}

// commit marks recs, handled records in poll order, and commits the marks. A failed commit
// is only logged: the records will be handled again, which at-least-once allows, and the
// next commit on their partitions covers them.
func (c *consumer) commit(ctx context.Context, recs []*kgo.Record) {
	if len(recs) == 0 {
		return
	}
	c.cl.MarkCommitRecords(recs...)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := c.cl.CommitMarkedOffsets(ctx); err != nil {
		c.log.Warn("commit failed; records will be handled again", "records", len(recs), "err", err)
	}
}
