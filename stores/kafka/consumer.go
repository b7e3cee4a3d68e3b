package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// Defaults of ConsumerConfig, and the reader settings Consume does not expose.
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
	// How long the coordinator waits for every member to rejoin. A kafka-go member rejoins
	// without waiting for its handler, within a heartbeat and a fetch, so 10s is ample.
	defaultRebalanceTimeout = 10 * time.Second

	// fetchMaxWait is the reader's deadline for one fetch. kafka-go asks the broker to wait
	// for new records for this much less a margin for the round trip: a quarter of it under
	// 1s, else 1s. At 500ms the margin was 125ms, which a process busy with hundreds of
	// goroutines overran: `make run` under a burst of registrations logged an "i/o timeout"
	// and redialled every partition about once a second. At 1.5s the broker waits 0.5s and
	// the answer has 1s to come back. kafka-go cannot interrupt a fetch in flight, so this
	// also bounds how long a rebalance or Consume's return waits (its default is 10s). New
	// records still arrive at once.
	fetchMaxWait = 1500 * time.Millisecond
	// joinGroupBackoff is the pause after a failed join, against kafka-go's 5s default.
	joinGroupBackoff = time.Second
	// commitTimeout bounds the commit after a handled record. The commit outlives ctx,
	// since dropping it would only make the record be handled again.
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
	// takes nothing more, lets the handler finish with a context that ends this much later,
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
// batches, to cfg.BatchHandler), at least once each, until ctx ends; then it leaves the group
// and returns nil. It returns an error only for an invalid cfg: broker failures are logged
// and retried.
//
// A record is committed only after Handler (or BatchHandler, for its batch) succeeded, so a
// consumer stopped before that leaves the record to the next consumer of the group. A failing
// record is retried with backoff, holding back the records behind it, until it succeeds,
// until ctx ends, or (see ErrPoison) until it is found to be poison, when it is logged and
// skipped.
func Consume(ctx context.Context, cfg ConsumerConfig) error {
	if err := cfg.check(); err != nil {
		return fmt.Errorf("kafka: consume: %w", err)
	}
	cfg.setDefaults()
	log := cfg.Log.With("topic", cfg.Topic, "group", cfg.GroupID)
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:           cfg.Brokers,
		Topic:             cfg.Topic,
		GroupID:           cfg.GroupID,
		Dialer:            &kafkago.Dialer{ClientID: clientID, Timeout: adminTimeout, DualStack: true},
		StartOffset:       kafkago.FirstOffset,
		MaxWait:           fetchMaxWait,
		SessionTimeout:    cfg.SessionTimeout,
		HeartbeatInterval: cfg.HeartbeatInterval,
		RebalanceTimeout:  cfg.RebalanceTimeout,
		JoinGroupBackoff:  joinGroupBackoff,
		// CommitInterval 0 makes CommitMessages wait for the broker's answer, which is what
		// lets a handled record count as committed.
		CommitInterval: 0,
		ErrorLogger:    kafkaLogger(log, slog.LevelWarn),
	})
	log.Info("consumer started")
	c := &consumer{cfg: cfg, r: r, log: log}
	if cfg.BatchHandler != nil {
		c.runBatches(ctx)
	} else {
		c.run(ctx)
	}
	// Close waits for the reader's goroutines and leaves the group, so that the partitions
	// move to the other members now rather than after SessionTimeout.
	if err := r.Close(); err != nil {
		log.Warn("close consumer", "err", err)
	}
	log.Info("consumer stopped")
	return nil
}

type consumer struct {
	cfg ConsumerConfig
	r   *kafkago.Reader
	log *slog.Logger
}

// run fetches, handles and commits records until ctx ends.
func (c *consumer) run(ctx context.Context) {
	hctx, stop := drainContext(ctx, c.cfg.DrainTimeout)
	defer stop()
	for ctx.Err() == nil {
		km, ok := c.fetch(ctx)
		if !ok || !c.handle(hctx, km) {
			return
		}
		c.commit(ctx, []kafkago.Message{km})
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

// fetch returns the next record, retrying failed fetches, or false once ctx ended.
func (c *consumer) fetch(ctx context.Context) (kafkago.Message, bool) {
	for failures := 1; ; failures++ {
		km, err := c.r.FetchMessage(ctx)
		if err == nil {
			return km, true
		}
		if ctx.Err() != nil {
			return kafkago.Message{}, false
		}
		// kafka-go keeps rejoining and refetching by itself; the pause only keeps a broker
		// outage from filling the log.
		d := backoff(failures, c.cfg.RetryMin, c.cfg.RetryMax)
		c.log.Warn("fetch failed", "err", err, "retry_in", d)
		if !sleep(ctx, d) {
			return kafkago.Message{}, false
		}
	}
}

// handle calls the handler until it succeeds or the record proves poison, and reports
// whether the record may be committed: false means ctx ended first.
func (c *consumer) handle(ctx context.Context, km kafkago.Message) bool {
	m := fromKafka(km)
	log := c.log.With("partition", km.Partition, "offset", km.Offset)
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
				log.Error("skipping poison record", "key", string(km.Key), "attempts", attempt, "err", err)
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

// commit commits the offsets of kms, handled records in fetch order, with one request: a
// partition's offset is that of its last record there. A failed commit is only logged: the
// records will be handled again, which at-least-once allows, and the next commit on their
// partitions covers them.
func (c *consumer) commit(ctx context.Context, kms []kafkago.Message) {
	if len(kms) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	last := lastPerPartition(kms)
	if err := c.r.CommitMessages(ctx, last...); err != nil {
		for _, km := range last {
			c.log.Warn("commit failed; records will be handled again",
				"partition", km.Partition, "offset", km.Offset, "err", err)
		}
	}
}

// lastPerPartition returns the last record of each partition in kms.
func lastPerPartition(kms []kafkago.Message) []kafkago.Message {
	var last []kafkago.Message
	index := make(map[int]int)
	for _, km := range kms {
		if i, ok := index[km.Partition]; ok {
			last[i] = km
			continue
		}
		index[km.Partition] = len(last)
		last = append(last, km)
	}
	return last
}
